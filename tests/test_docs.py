"""The examples in the package docstring run as written."""

import doctest

import pagealloc


def test_package_docstring_examples():
    result = doctest.testmod(pagealloc)
    assert result.attempted >= 5
    assert result.failed == 0


def test_heap_docstring_example():
    import pagealloc.heap

    result = doctest.testmod(pagealloc.heap)
    assert result.attempted >= 2
    assert result.failed == 0

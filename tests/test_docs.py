"""The examples in the package docstring run as written."""

import doctest

import pagealloc


def test_package_docstring_examples():
    result = doctest.testmod(pagealloc)
    assert result.attempted >= 5
    assert result.failed == 0

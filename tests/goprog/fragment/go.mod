module fragment

go 1.19

module concurrent

go 1.19

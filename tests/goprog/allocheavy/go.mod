module allocheavy

go 1.19

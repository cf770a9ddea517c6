module goreturns

go 1.19

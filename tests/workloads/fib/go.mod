module fib

go 1.19

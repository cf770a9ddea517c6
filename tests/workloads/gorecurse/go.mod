module gorecurse

go 1.19

module kit.local/kindnetd

go 1.24

module kit.local/netpol-smoke

go 1.24

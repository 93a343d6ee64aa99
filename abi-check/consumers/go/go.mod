module zerobus.local/abi-check/consumers/go

go 1.21

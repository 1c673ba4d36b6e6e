module libtern.dev/bindings/go

go 1.19

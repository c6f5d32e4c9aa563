module pprofd/testdata/pprof/gen

go 1.19

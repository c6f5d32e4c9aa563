module pprofd.dev/bench/gen

go 1.19

module pprofd.dev/bench/sim

go 1.19

module pprofd.dev/demo-app

go 1.19

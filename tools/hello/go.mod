module rhime.dev/tools/hello

go 1.26.0

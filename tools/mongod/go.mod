module rhime.dev/tools/mongod

go 1.24

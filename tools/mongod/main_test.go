package main

import "testing"

func TestParse(t *testing.T) {
	cases := []struct {
		args []string
		want settings
	}{
		{[]string{"mongod", "--bind_ip_all", "--dbpath", "/data/db"}, settings{host: "", port: 27017, dir: "/data/db"}},
		{[]string{"--bind_ip_all", "--bind_ip=127.0.0.1", "--port", "4000"}, settings{host: "127.0.0.1", port: 4000, dir: "/data/db"}},
		{[]string{"--quiet", "--dbpath=/x"}, settings{host: "127.0.0.1", port: 27017, dir: "/x", quiet: true}},
	}
	for _, c := range cases {
		got, err := parse(c.args)
		if err != nil || got != c.want {
			t.Errorf("parse(%v) = %+v, %v; want %+v", c.args, got, err, c.want)
		}
	}
	for _, bad := range [][]string{{"--port", "x"}, {"--dbpath"}, {"--fork"}, {"--bind_ip", "a,b"}} {
		if _, err := parse(bad); err == nil {
			t.Errorf("parse(%v) accepted", bad)
		}
	}
}

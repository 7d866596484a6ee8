// Command mongod is the entrypoint of Rhime's MongoDB stand-in image: it takes the mongod
// flags the operator renders (`mongod --bind_ip_all --dbpath /data/db`) and runs FerretDB
// (rhime-ferretdb, beside it) with the same address and folder. The image has no shell, so
// this small program does what a wrapper script would.
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

type settings struct {
	host  string
	port  int
	dir   string
	quiet bool
}

// parse reads mongod's flags as `--name value` or `--name=value`; a later flag wins, as in
// mongod. A leading `mongod` (the operator's first arg) is skipped.
func parse(args []string) (settings, error) {
	s := settings{host: "127.0.0.1", port: 27017, dir: "/data/db"}
	if len(args) > 0 && args[0] == "mongod" {
		args = args[1:]
	}
	for i := 0; i < len(args); i++ {
		name, value, inline := strings.Cut(args[i], "=")
		takeValue := func() (string, error) {
			if inline {
				return value, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		switch name {
		case "--bind_ip_all":
			s.host = ""
		case "--bind_ip":
			v, err := takeValue()
			if err != nil {
				return s, err
			}
			if strings.Contains(v, ",") {
				return s, fmt.Errorf("--bind_ip %s: FerretDB listens on one address", v)
			}
			s.host = v
		case "--port":
			v, err := takeValue()
			if err != nil {
				return s, err
			}
			port, err := strconv.Atoi(v)
			if err != nil || port < 1 || port > 65535 {
				return s, fmt.Errorf("--port %s is not a port", v)
			}
			s.port = port
		case "--dbpath":
			v, err := takeValue()
			if err != nil {
				return s, err
			}
			s.dir = v
		case "--quiet":
			s.quiet = true
		default:
			return s, fmt.Errorf("%s: not a flag this stand-in takes", args[i])
		}
	}
	return s, nil
}

// ferretdb is the rhime-ferretdb beside this program, or else on PATH (without /proc, as
// under a bare chroot, this program cannot see where it is).
func ferretdb() (string, error) {
	if self, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(self), "rhime-ferretdb")
		if _, err := os.Stat(beside); err == nil {
			return beside, nil
		}
	}
	return exec.LookPath("rhime-ferretdb")
}

func main() {
	s, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "mongod:", err)
		os.Exit(2)
	}
	server, err := ferretdb()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mongod:", err)
		os.Exit(1)
	}
	argv := []string{server, "-listen", net.JoinHostPort(s.host, strconv.Itoa(s.port)), "-dir", s.dir}
	if s.quiet {
		argv = append(argv, "-log-level", "error")
	}
	// exec, so FerretDB is the container's process and gets its signals
	if err := syscall.Exec(server, argv, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "mongod:", err)
		os.Exit(1)
	}
}

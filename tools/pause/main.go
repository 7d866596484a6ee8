// Command pause is the pod sandbox's process: it holds the pod's namespaces and exits on
// SIGTERM or SIGINT. Built statically and packaged as an image by rhime.runtime.images, so
// containerd never pulls its sandbox image from a registry.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	// As PID 1 of the pod it also reaps orphans, so none linger as zombies.
	reap := make(chan os.Signal, 1)
	signal.Notify(reap, syscall.SIGCHLD)
	for {
		select {
		case <-signals:
			os.Exit(0)
		case <-reap:
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}

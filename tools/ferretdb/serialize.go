package main

// FerretDB 1.x applies an update by reading the matching document and writing it back, with
// no lock between the two: concurrent `$inc`s on one document lose updates and a conditional
// update can match twice. MongoDB makes every single-document write atomic, and Rhime relies
// on that. This proxy restores it: it forwards the wire protocol unchanged and lets one
// write command at a time through to FerretDB; reads stay concurrent.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
	"time"
)

const slow = time.Second

const (
	opMsg        = 2013
	opQuery      = 2004
	maxMessage   = 48 * 1024 * 1024
	headerLength = 16
)

var writeCommands = map[string]bool{
	"insert": true, "update": true, "delete": true, "findAndModify": true,
	"findandmodify": true, "createIndexes": true, "dropIndexes": true, "drop": true,
	"dropDatabase": true, "create": true, "renameCollection": true,
}

type serializer struct {
	backend string // unix socket of FerretDB
	writes  sync.Mutex
}

func (s *serializer) serve(l net.Listener) error {
	for {
		client, err := l.Accept()
		if err != nil {
			return err
		}
		go s.handle(client)
	}
}

func (s *serializer) handle(client net.Conn) {
	defer client.Close()
	backend, err := net.Dial("unix", s.backend)
	if err != nil {
		log.Printf("backend: %v", err)
		return
	}
	defer backend.Close()
	for {
		request, err := readMessage(client)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				log.Printf("client: %v", err)
			}
			return
		}
		command, write := commandOf(request)
		started := time.Now()
		if write {
			s.writes.Lock()
		}
		err = roundTrip(backend, client, request)
		if write {
			s.writes.Unlock()
		}
		if took := time.Since(started); took > slow {
			log.Printf("slow %s: %s", command, took.Round(time.Millisecond))
		}
		if err != nil {
			log.Printf("round trip: %v", err)
			return
		}
	}
}

func roundTrip(backend, client net.Conn, request []byte) error {
	if _, err := backend.Write(request); err != nil {
		return err
	}
	if moreToCome(request) {
		return nil // the server sends no reply
	}
	reply, err := readMessage(backend)
	if err != nil {
		return err
	}
	_, err = client.Write(reply)
	return err
}

func readMessage(r io.Reader) ([]byte, error) {
	header := make([]byte, headerLength)
	if _, err := io.ReadFull(r, header); err != nil {
		return nil, err
	}
	length := int(binary.LittleEndian.Uint32(header))
	if length < headerLength || length > maxMessage {
		return nil, fmt.Errorf("bad message length %d", length)
	}
	message := make([]byte, length)
	copy(message, header)
	if _, err := io.ReadFull(r, message[headerLength:]); err != nil {
		return nil, err
	}
	return message, nil
}

func moreToCome(message []byte) bool {
	if binary.LittleEndian.Uint32(message[12:]) != opMsg || len(message) < 20 {
		return false
	}
	return binary.LittleEndian.Uint32(message[16:])&2 != 0
}

// commandOf reads the command name (the first key of the OP_MSG body document) and whether
// it writes.
func commandOf(message []byte) (string, bool) {
	if binary.LittleEndian.Uint32(message[12:]) != opMsg {
		return "legacy", false
	}
	pos := headerLength + 4 // flag bits
	for pos < len(message) {
		kind := message[pos]
		pos++
		if kind == 0 { // body: a BSON document
			if pos+5 > len(message) {
				return "", false
			}
			key := message[pos+5:] // skip document length and the first element's type
			for i, b := range key {
				if b == 0 {
					name := string(key[:i])
					return name, writeCommands[name]
				}
			}
			return "", false
		}
		if pos+4 > len(message) { // kind 1: a document sequence, skip it
			return "", false
		}
		pos += int(binary.LittleEndian.Uint32(message[pos:]))
	}
	return "", false
}

package vmtest

import (
	"bytes"
	"os/exec"
	"path"
	"strings"
	"testing"
)

// TestHostProgram: a dynamically linked host tool comes with its
// interpreter and libraries at their host paths, and the archive holds
// each path once although the payload's libraries and another tool's
// overlap; the same path with other contents is refused.
func TestHostProgram(t *testing.T) {
	ls, err := exec.LookPath("ls")
	if err != nil {
		t.Skip("no ls on this host")
	}
	files, err := HostProgram(ls, "/vmtest/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	if files[0].Guest != "/vmtest/bin/ls" || files[0].Host != ls {
		t.Fatalf("first file %+v, want the program itself", files[0])
	}
	interp, err := elfInterpreter(ls)
	if err != nil {
		t.Fatal(err)
	}
	if interp == "" {
		t.Skip("ls is static here: nothing to check")
	}
	var guests []string
	for _, f := range files[1:] {
		if f.Guest != f.Host || !path.IsAbs(f.Guest) {
			t.Errorf("library %+v: want it at its host path", f)
		}
		guests = append(guests, f.Guest)
	}
	if !strings.Contains(strings.Join(guests, " "), interp) {
		t.Errorf("libraries %v lack the interpreter %s", guests, interp)
	}
	if _, err := HostProgram(ls, "relative/ls"); err == nil {
		t.Error("a relative guest path was accepted")
	}

	// Twice the same files (two tools sharing libc): each path once.
	bb, err := findBusybox()
	if err != nil {
		t.Skip(err)
	}
	ir := initramfs{busybox: bb, init: []byte("#!/bin/sh\n"), files: append(append([]File{}, files...), files[1:]...)}
	var buf bytes.Buffer
	if err := ir.write(&buf); err != nil {
		t.Fatalf("overlapping libraries: %v", err)
	}
	if n := strings.Count(buf.String(), files[1].Guest[1:]+"\x00"); n != 1 {
		t.Errorf("%s is %d times in the archive, want once", files[1].Guest, n)
	}
	clash := initramfs{busybox: bb, init: []byte("#!/bin/sh\n"), files: []File{
		{Guest: "/x", Data: []byte("a")}, {Guest: "/x", Data: []byte("b")},
	}}
	if err := clash.write(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("one path with two contents: %v, want an error", err)
	}
}

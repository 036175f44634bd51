// Package mounts reads the mount table format of /proc/self/mounts.
package mounts

import (
	"strconv"
	"strings"
)

// Unescape undoes the octal escapes the kernel writes in the paths of
// /proc/self/mounts (\040 for a space, \011 for a tab, \012 for a newline,
// \134 for a backslash). A backslash not followed by three octal digits of
// a byte's value is kept as it is.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil && !strings.ContainsAny(s[i+1:i+4], "+-") {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

package kbtf

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf/btf"
	"github.com/klauspost/compress/zstd"
)

// zstdMagic starts every (non-skippable) zstd frame.
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// elfMagic starts every ELF file.
var elfMagic = []byte{0x7f, 'E', 'L', 'F'}

// maxVmlinux bounds the decompressed size, so that a false magic match with
// a corrupt header cannot make the decoder allocate without limit. Debian's
// vmlinux is about 64 MiB.
const maxVmlinux = 1 << 30

// Vmlinux returns the kernel ELF (vmlinux) held by the kernel image at path
// vmlinuz. A bzImage is searched for a zstd frame that decompresses to an
// ELF; only that frame is decoded, and bytes after it are ignored. A file
// that already is an ELF is returned as it is.
func Vmlinux(vmlinuz string) ([]byte, error) {
	data, err := os.ReadFile(vmlinuz)
	if err != nil {
		return nil, fmt.Errorf("kbtf: read kernel image: %w", err)
	}
	if bytes.HasPrefix(data, elfMagic) {
		return data, nil
	}

	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(maxVmlinux))
	if err != nil {
		return nil, fmt.Errorf("kbtf: zstd decoder: %w", err)
	}
	defer dec.Close()

	// The magic may also occur by chance, in the real mode setup code or
	// inside compressed data, so try each occurrence in turn. If none holds
	// an ELF, report the candidate that got furthest.
	var (
		tried    int
		best     error
		bestRank = -1
	)
	note := func(rank int, err error) {
		if rank > bestRank {
			best, bestRank = err, rank
		}
	}
	for off := 0; ; {
		i := bytes.Index(data[off:], zstdMagic)
		if i < 0 {
			break
		}
		start := off + i
		off = start + 1
		tried++

		out, err := decodeFrame(dec, data[start:])
		var fe *frameError
		switch {
		case errors.As(err, &fe):
			note(0, fmt.Errorf("offset %d: %w", start, err))
		case err != nil:
			note(1, fmt.Errorf("offset %d: %w", start, err))
		case !bytes.HasPrefix(out, elfMagic):
			note(2, fmt.Errorf("offset %d: frame decompresses to %d bytes that are not an ELF", start, len(out)))
		default:
			return out, nil
		}
	}

	msg := fmt.Sprintf("kbtf: no zstd-compressed kernel found in %s (is it a bzImage built with CONFIG_KERNEL_ZSTD?)", vmlinuz)
	if tried == 0 {
		return nil, errors.New(msg)
	}
	return nil, fmt.Errorf("%s: tried %d candidate frames; most promising at %w", msg, tried, best)
}

// decodeFrame decompresses the zstd frame at the start of b, ignoring
// whatever follows it.
func decodeFrame(dec *zstd.Decoder, b []byte) ([]byte, error) {
	n, hdr, err := frameLen(b)
	if err != nil {
		return nil, &frameError{err}
	}
	// Size the output buffer from the frame header if it has the content
	// size, else from the four little-endian bytes after the frame, where
	// the kernel build appends it (size_append in scripts/Makefile.lib).
	// Either is only a hint, taken when plausible for a compressed kernel
	// (compression ratio up to maxRatio): the decoder grows the buffer as
	// needed.
	const maxRatio = 16
	hint := uint64(0)
	switch {
	case hdr.HasFCS:
		hint = hdr.FrameContentSize
	case len(b) >= n+4:
		hint = uint64(binary.LittleEndian.Uint32(b[n:]))
	}
	var dst []byte
	if hint >= uint64(n) && hint <= min(maxVmlinux, maxRatio*uint64(n)) {
		dst = make([]byte, 0, hint)
	}
	out, err := dec.DecodeAll(b[:n], dst)
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return out, nil
}

// frameError reports bytes after a zstd magic that do not have the layout
// of a frame: most likely the magic occurred by chance.
type frameError struct{ err error }

func (e *frameError) Error() string { return "not a zstd frame: " + e.err.Error() }
func (e *frameError) Unwrap() error { return e.err }

// Zstandard frame layout (RFC 8878, section 3.1.1): a frame header, then
// blocks that each start with a 3-byte little-endian header, then an
// optional 4-byte checksum.
const (
	blockHeaderSize = 3
	blockTypeRaw    = 0
	blockTypeRLE    = 1
	blockTypeComp   = 2
	maxBlockSize    = 128 << 10
	checksumSize    = 4
)

// frameLen returns the length of the zstd frame at the start of b by
// walking its block headers, and the frame's header. Decoding exactly that
// many bytes stops the decoder cleanly where the frame ends.
func frameLen(b []byte) (int, zstd.Header, error) {
	var hdr zstd.Header
	if err := hdr.Decode(b); err != nil {
		return 0, hdr, fmt.Errorf("frame header: %w", err)
	}
	if hdr.Skippable {
		return 0, hdr, errors.New("skippable frame")
	}
	pos := hdr.HeaderSize
	for {
		if len(b)-pos < blockHeaderSize {
			return 0, hdr, fmt.Errorf("truncated frame: block header at %d past the end of the file", pos)
		}
		bh := uint32(b[pos]) | uint32(b[pos+1])<<8 | uint32(b[pos+2])<<16
		last := bh&1 != 0
		typ := (bh >> 1) & 3
		size := int(bh >> 3)
		pos += blockHeaderSize
		switch typ {
		case blockTypeRaw, blockTypeComp:
			if size > maxBlockSize {
				return 0, hdr, fmt.Errorf("block at %d: size %d exceeds the maximum %d", pos-blockHeaderSize, size, maxBlockSize)
			}
			pos += size
		case blockTypeRLE:
			pos++ // one byte, repeated size times
		default:
			return 0, hdr, fmt.Errorf("block at %d: reserved block type", pos-blockHeaderSize)
		}
		if pos > len(b) {
			return 0, hdr, errors.New("truncated frame: block past the end of the file")
		}
		if last {
			break
		}
	}
	if hdr.HasCheckSum {
		pos += checksumSize
		if pos > len(b) {
			return 0, hdr, errors.New("truncated frame: checksum past the end of the file")
		}
	}
	return pos, hdr, nil
}

// LoadSpec returns the BTF of the kernel image at path vmlinuz (a bzImage or
// an uncompressed vmlinux ELF).
func LoadSpec(vmlinuz string) (*btf.Spec, error) {
	vmlinux, err := Vmlinux(vmlinuz)
	if err != nil {
		return nil, err
	}
	raw, err := btfSection(vmlinux)
	if err != nil {
		return nil, fmt.Errorf("kbtf: %s: %w", vmlinuz, err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("kbtf: load BTF of %s: %w", vmlinuz, err)
	}
	return spec, nil
}

// btfSection returns the contents of the .BTF section of an ELF.
//
// The vmlinux in a bzImage is stripped of its symbol table, which
// btf.LoadSpecFromReader requires of an ELF (to place variables of BPF
// objects in their sections; kernel BTF needs no such fix-up). Handing it
// the raw section instead loads the same types.
func btfSection(b []byte) ([]byte, error) {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("parse vmlinux ELF: %w", err)
	}
	sec := f.Section(".BTF")
	if sec == nil {
		return nil, errors.New("vmlinux has no .BTF section (kernel built without CONFIG_DEBUG_INFO_BTF?)")
	}
	raw, err := sec.Data()
	if err != nil {
		return nil, fmt.Errorf("read .BTF section: %w", err)
	}
	return raw, nil
}

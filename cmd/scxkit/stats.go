package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/scxkit/scxkit/scx/scxstats"
)

func statsCommand() (*flag.FlagSet, func(context.Context, io.Writer, io.Writer) error) {
	fs := flag.NewFlagSet("stats", flag.ContinueOnError)
	socket := fs.String("socket", "", "read the stats server at `PATH` instead of "+scxstats.DefaultDir+"/NAME/stats")
	jsonOut := fs.Bool("json", false, "print the server's reply as it is: one JSON object")
	meta := fs.Bool("meta", false, "describe the stats (name, type, kind, description) instead of reading them")
	setUsage(fs, "scxkit stats [--socket PATH] [--json] [--meta] NAME",
		`Stats prints the stats of a running sched_ext scheduler, read from its
scx_stats socket, `+scxstats.DefaultDir+`/NAME/stats (or --socket PATH).
Schedulers built with package runner serve theirs there under their
command's name (scxkit stats simple), and so do sched-ext/scx's Rust
schedulers (under root unless told otherwise).

It prints one line per stat, "name value", in the order of the fields'
names (a dict's entries in the order of their keys). A nested
struct's fields are named struct.field, and a dict's entries get the
dict's label and key in braces, as in dsq.queued{domain=0}: the names of
the runner's stats lines. A counter's value is its total, a gauge's its
level. --json prints the reply as the server sent it; --meta describes
every stat instead: its type, its kind where the server says (counter
or gauge; runner's servers do, the Rust crate's do not) and what it
measures. Reading a root scheduler's socket needs root.`)
	return fs, func(ctx context.Context, stdout, _ io.Writer) error {
		// NAME may come before flags: scxkit stats simple --json.
		var names []string
		for args := fs.Args(); len(args) > 0; args = fs.Args() {
			names = append(names, args[0])
			fs.SetOutput(io.Discard)
			if err := fs.Parse(args[1:]); err != nil {
				if errors.Is(err, flag.ErrHelp) {
					fs.SetOutput(stdout)
					fs.Usage()
					return nil
				}
				return usagef("%v", err)
			}
		}
		path := *socket
		switch {
		case len(names) > 1:
			return usagef("unexpected argument %q: give one scheduler name", names[1])
		case len(names) == 1 && path != "":
			return usagef("give the scheduler's NAME or --socket PATH, not both")
		case len(names) == 0 && path == "":
			return usagef("name the scheduler, e.g. scxkit stats simple, or give --socket PATH")
		case path == "":
			p, err := scxstats.DefaultPath(names[0])
			if err != nil {
				return usagef("%q: not a scheduler name: %v", names[0], err)
			}
			path = p
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return stats(ctx, stdout, path, names, *jsonOut, *meta)
	}
}

// stats reads the server at path and prints its stats or their metas.
func stats(ctx context.Context, w io.Writer, path string, names []string, jsonOut, meta bool) error {
	c, err := scxstats.Dial(ctx, path)
	if err != nil {
		return dialError(path, names, err)
	}
	defer c.Close()
	req := "stats"
	if meta {
		req = "stats_meta"
	}
	if jsonOut {
		var raw json.RawMessage
		if err := c.Request(ctx, req, nil, &raw); err != nil {
			return requestError(path, err)
		}
		_, err := fmt.Fprintf(w, "%s\n", raw)
		return err
	}
	// Without metas (a server that has none), stats are flattened by
	// their JSON shape alone.
	var metas map[string]scxstats.Meta
	merr := c.Request(ctx, "stats_meta", nil, &metas)
	if meta {
		if merr != nil {
			return requestError(path, merr)
		}
		return printMetas(w, metas)
	}
	var rerr *scxstats.RemoteError
	if merr != nil && !errors.As(merr, &rerr) {
		return requestError(path, merr)
	}
	var raw json.RawMessage
	if err := c.Request(ctx, "stats", nil, &raw); err != nil {
		return requestError(path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("decode stats: %w", err)
	}
	f := flattener{metas: metas}
	top, _ := v.(map[string]any)
	if top == nil {
		return fmt.Errorf("stats reply is %s, want a JSON object", raw)
	}
	f.walkStruct("", nil, topMeta(metas), top, 0)
	bw := new(bytes.Buffer)
	for _, l := range f.lines {
		fmt.Fprintf(bw, "%s %s\n", l.name, l.value)
	}
	_, err = w.Write(bw.Bytes())
	return err
}

// dialError explains a failed connection: most often the scheduler is
// not running.
func dialError(path string, names []string, err error) error {
	who := "the scheduler"
	if len(names) == 1 {
		who = names[0]
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("no stats server at %s: is %s running? (schedulers built with package runner serve their stats there unless started with -stats-socket off)", path, who)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("nothing listens on %s: %s is not running (a stale socket, left by a scheduler that was killed)", path, who)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s: permission denied: the socket belongs to the user that runs %s (root): run scxkit stats as that user", path, who)
	}
	return err
}

// requestError says which server failed a request, and what a server
// with no scheduler attached (EAGAIN) means.
func requestError(path string, err error) error {
	var rerr *scxstats.RemoteError
	if errors.As(err, &rerr) && errors.Is(err, syscall.EAGAIN) {
		return fmt.Errorf("%s: the scheduler is not attached right now (starting, or restarting after CPU hotplug): try again: %s", path, rerr.Msg)
	}
	return fmt.Errorf("%s: %w", path, err)
}

// topMeta returns the name of the top struct, "" if none is marked.
func topMeta(metas map[string]scxstats.Meta) string {
	for _, name := range slices.Sorted(maps.Keys(metas)) {
		if metas[name].Top != "" {
			return name
		}
	}
	return ""
}

// maxDepth bounds the nesting of structs a reply or metas may have (a
// server's metas might refer to themselves).
const maxDepth = 32

// A label is a dict's label and key on the way to a value.
type label struct{ name, value string }

// statLine is one "name value" line.
type statLine struct{ name, value string }

// flattener turns a stats reply into lines, led by the metas: a struct
// field's values are named prefix.field; a dict whose structs have an
// _om_label user attribute (as the OpenMetrics tools read it) gives its
// entries that label, without the dict's own name; another dict gives them
// the label "key" under its own name; a list's elements get "index".
type flattener struct {
	metas map[string]scxstats.Meta
	lines []statLine
}

func (f *flattener) walkStruct(prefix string, labels []label, metaName string, obj map[string]any, depth int) {
	m := f.metas[metaName]
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		field, known := m.Fields[k]
		f.walkField(prefix, k, labels, field, known, obj[k], depth)
	}
}

func (f *flattener) walkField(prefix, k string, labels []label, field scxstats.Field, known bool, v any, depth int) {
	name := prefix + k
	if depth > maxDepth {
		f.emit(name, labels, "(nested too deep)")
		return
	}
	switch v := v.(type) {
	case map[string]any:
		switch {
		case known && field.Dict != nil:
			sub := field.Dict.Datum.Struct
			lname, p := "key", name+"."
			if l := f.metas[sub].User["_om_label"]; sub != "" && l != "" {
				lname, p = l, prefix
			}
			for _, key := range sortedKeys(v) {
				ls := append(slices.Clip(labels), label{lname, key})
				if obj, ok := v[key].(map[string]any); ok && sub != "" {
					f.walkStruct(p, ls, sub, obj, depth+1)
				} else {
					f.walkField(prefix, k, ls, scxstats.Field{}, false, v[key], depth+1)
				}
			}
		case known && field.Datum.Struct != "":
			f.walkStruct(name+".", labels, field.Datum.Struct, v, depth+1)
		default:
			f.walkStruct(name+".", labels, "", v, depth+1)
		}
	case []any:
		for i, e := range v {
			ls := append(slices.Clip(labels), label{"index", strconv.Itoa(i)})
			if obj, ok := e.(map[string]any); ok {
				f.walkStruct(name+".", ls, field.Array.Struct, obj, depth+1)
			} else {
				f.walkField(prefix, k, ls, scxstats.Field{}, false, e, depth+1)
			}
		}
	case json.Number:
		f.emit(name, labels, v.String())
	case string:
		f.emit(name, labels, strconv.Quote(v))
	case bool:
		f.emit(name, labels, strconv.FormatBool(v))
	case nil:
		f.emit(name, labels, "null")
	}
}

func (f *flattener) emit(name string, labels []label, value string) {
	f.lines = append(f.lines, statLine{statName(name, labels), value})
}

// statName formats name{label=value,...}, quoting a label value as the
// runner's stats lines do.
func statName(name string, labels []label) string {
	if len(labels) == 0 {
		return name
	}
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, l := range labels {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.name)
		if l.value != "\x00" {
			b.WriteByte('=')
			b.WriteString(labelValue(l.value))
		}
	}
	b.WriteByte('}')
	return b.String()
}

// labelValue quotes v if it holds anything that would make a line
// ambiguous.
func labelValue(v string) string {
	if v == "" || strings.ContainsFunc(v, func(r rune) bool {
		return r <= ' ' || r == '"' || r == ',' || r == '=' || r == '{' || r == '}' || r == 0x7f || !strconv.IsPrint(r)
	}) {
		return strconv.Quote(v)
	}
	return v
}

// sortedKeys sorts a dict's keys, numerically when both are integers.
func sortedKeys(m map[string]any) []string {
	return slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		x, errA := strconv.ParseInt(a, 10, 64)
		y, errB := strconv.ParseInt(b, 10, 64)
		if errA == nil && errB == nil {
			return cmp.Compare(x, y)
		}
		return strings.Compare(a, b)
	})
}

// printMetas describes every stat the top struct leads to: its name as
// the stats lines give it (with the labels of its dicts), type and
// description.
func printMetas(w io.Writer, metas map[string]scxstats.Meta) error {
	top := topMeta(metas)
	if top == "" {
		return errors.New("the server's metas mark no top struct")
	}
	var lines [][4]string
	var walk func(prefix string, labels []label, name string, depth int)
	walk = func(prefix string, labels []label, name string, depth int) {
		m := metas[name]
		for _, k := range slices.Sorted(maps.Keys(m.Fields)) {
			field := m.Fields[k]
			n := prefix + k
			switch {
			case depth > maxDepth:
				return
			case field.Dict != nil && field.Dict.Datum.Struct != "":
				sub := field.Dict.Datum.Struct
				if l := metas[sub].User["_om_label"]; l != "" {
					walk(prefix, append(slices.Clip(labels), label{l, "\x00"}), sub, depth+1)
				} else {
					walk(n+".", append(slices.Clip(labels), label{"key", "\x00"}), sub, depth+1)
				}
			case field.Dict != nil:
				lines = append(lines, [4]string{statName(n, append(slices.Clip(labels), label{"key", "\x00"})), field.Dict.Datum.String(), statKind(field), field.Desc})
			case field.Datum.Struct != "":
				walk(n+".", labels, field.Datum.Struct, depth+1)
			case field.Array.Struct != "":
				walk(n+".", append(slices.Clip(labels), label{"index", "\x00"}), field.Array.Struct, depth+1)
			case !field.Array.IsZero():
				lines = append(lines, [4]string{statName(n, append(slices.Clip(labels), label{"index", "\x00"})), field.Array.String(), statKind(field), field.Desc})
			default:
				lines = append(lines, [4]string{statName(n, labels), field.Datum.String(), statKind(field), field.Desc})
			}
		}
	}
	walk("", nil, top, 0)
	slices.SortStableFunc(lines, func(a, b [4]string) int { return strings.Compare(a[0], b[0]) })
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "NAME\tTYPE\tKIND\tDESCRIPTION\n")
	for _, l := range lines {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", l[0], l[1], l[2], l[3])
	}
	return tw.Flush()
}

// statKind returns what the field's _om_type attribute (scxstats.AttrType)
// says it is, "counter" (a total: its rate is what moves) or "gauge" (a
// level), or "-" when the server does not say, as the Rust crate's
// servers do not.
func statKind(f scxstats.Field) string {
	if k := f.User[scxstats.AttrType]; k != "" {
		return k
	}
	return "-"
}

package preempt

import (
	"bytes"
	"context"
	"fmt"

	"github.com/scxkit/scxkit/scx"
)

// Work implements scx.Worker: with Options.ConfigFile set, it looks at
// the file every Options.WatchInterval while the scheduler runs and
// writes the Config it holds whenever its contents change (and differ
// from the Config in force). It logs every change written ("config
// applied", at level Info) and every one refused ("config change not
// applied", at level Error, with the reason: a file that cannot be read,
// is not a regular file or is larger than MaxFileSize, a bad Config),
// after which the policy in force stays. An error is logged once, until
// the file changes again. A watched file never stops the scheduler.
// Without ConfigFile there is no periodic work.
func (c *Controller) Work() []scx.Periodic {
	if c.opts.ConfigFile == "" {
		return nil
	}
	return []scx.Periodic{{
		Name:  "watch " + c.opts.ConfigFile,
		Every: c.opts.WatchInterval,
		Func: func(context.Context, *scx.Scheduler) error {
			cfg, err := c.poll()
			switch {
			case err != nil:
				c.log.Error("config change not applied; the policy in force stays", "file", c.opts.ConfigFile, "err", err)
			case cfg != nil:
				c.log.Info("config applied", "file", c.opts.ConfigFile, "classes", classNames(cfg))
			}
			return nil
		},
	}}
}

// poll looks at Options.ConfigFile once. It returns the Config it wrote,
// or the error that kept it from writing one, or neither when there was
// nothing new to write: the file is as poll last saw it (or holds the
// Config in force), or it still cannot be read for the reason already
// reported. The file is read as by ParseFile: a FIFO or a device is
// refused without blocking.
func (c *Controller) poll() (*Config, error) {
	path := c.opts.ConfigFile
	text, err := readFile(path)
	if err != nil {
		if err.Error() == c.watchErr {
			return nil, nil
		}
		c.watchErr = err.Error()
		c.watchSeen = false // the same contents coming back are looked at again
		return nil, fmt.Errorf("preempt: config file: %w", err)
	}
	c.watchErr = ""
	if c.watchSeen && bytes.Equal(text, c.watchText) {
		return nil, nil
	}
	c.watchText, c.watchSeen = append(c.watchText[:0], text...), true
	cfg, err := Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if c.inForce(cfg) {
		return nil, nil
	}
	if err := c.Write(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c.Config(), nil
}

// inForce reports whether cfg, valid, is the Config in force, so that
// the watcher's first look at a file whose Config was given to New
// writes nothing (and logs nothing).
func (c *Controller) inForce(cfg *Config) bool {
	classes, err := cfg.normalize()
	if err != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return (&Config{Classes: classes}).String() == c.cfg.String()
}

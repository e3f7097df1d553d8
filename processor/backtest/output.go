package backtest

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/microtrigger/microtrigger/schema"
)

// write sorts the run's records and writes commands.jsonl and
// suppressions.jsonl into dir. Sorting makes the files independent of how
// the work was shared out: commands by (send_at, user_id, trigger, step,
// id), suppressions by (at, user_id, trigger, step, reason), ties by their
// bytes.
func (r *run) write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory: %w", err)
	}
	slices.SortFunc(r.cmds, compareCommands)
	slices.SortFunc(r.sups, compareSuppressions)
	if err := writeLines(filepath.Join(dir, CommandsFile), r.cmds, schema.AppendCommand); err != nil {
		return nil, err
	}
	if err := writeLines(filepath.Join(dir, SuppressionsFile), r.sups, schema.AppendSuppression); err != nil {
		return nil, err
	}
	return []string{CommandsFile, SuppressionsFile}, nil
}

func compareCommands(a, b schema.SendCommand) int {
	if c := a.SendAt.Compare(b.SendAt); c != 0 {
		return c
	}
	if c := cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.Trigger, b.Trigger),
		cmp.Compare(a.Step, b.Step), cmp.Compare(a.ID, b.ID)); c != 0 {
		return c
	}
	x, _ := schema.MarshalCommand(&a)
	y, _ := schema.MarshalCommand(&b)
	return bytes.Compare(x, y)
}

func compareSuppressions(a, b schema.Suppression) int {
	if c := a.At.Compare(b.At); c != 0 {
		return c
	}
	if c := cmp.Or(cmp.Compare(a.UserID, b.UserID), cmp.Compare(a.Trigger, b.Trigger),
		cmp.Compare(a.Step, b.Step), cmp.Compare(a.Reason, b.Reason)); c != 0 {
		return c
	}
	x, _ := schema.AppendSuppression(nil, &a)
	y, _ := schema.AppendSuppression(nil, &b)
	return bytes.Compare(x, y)
}

// writeFile writes a file through fill, atomically: a reader never sees
// half of it.
func writeFile(path string, fill func(*os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeLines writes one JSON line per item, encoded by appendJSON.
func writeLines[T any](path string, items []T, appendJSON func([]byte, *T) ([]byte, error)) error {
	return writeFile(path, func(f *os.File) error {
		w := bufio.NewWriterSize(f, 1<<16)
		var buf []byte
		for i := range items {
			var err error
			if buf, err = appendJSON(buf[:0], &items[i]); err != nil {
				return err
			}
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return w.Flush()
	})
}

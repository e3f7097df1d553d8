package cli

import (
	"errors"
	"io/fs"
	"os"
)

// A flag naming a file or directory that is not there is a usage error
// (ExitUsage), found before anything starts: the command could not have
// worked. What the path should hold is said, so the message tells what to
// give instead.

// What the directories and files of the flags hold, for the messages.
const (
	aRulePack   = "the directory of a rule pack (its *.yaml files; `microtrigger rules check DIR` checks one)"
	aTemplates  = "the directory of the email templates (*.html)"
	aJSONLInput = "a JSONL file of events, one Segment envelope per line (--input=- reads standard input)"
	aRuleTest   = "a rule test file (YAML)"
)

// needDir refuses path unless it is a directory.
func (e *env) needDir(cmd, flag, path, what string) error {
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return nil
	case err == nil:
		return e.usageError(cmd, "%s %s is a file, not a directory: give %s", flag, path, what)
	case errors.Is(err, fs.ErrNotExist):
		return e.usageError(cmd, "%s %s: no such directory: give %s", flag, path, what)
	}
	return e.usageError(cmd, "%s %s: %v: give %s", flag, path, pathCause(err), what)
}

// needFile refuses path unless it is a file that can be opened.
func (e *env) needFile(cmd, flag, path, what string) error {
	st, err := os.Stat(path)
	switch {
	case err == nil && st.IsDir():
		return e.usageError(cmd, "%s %s is a directory: give %s", flag, path, what)
	case err == nil:
		f, err := os.Open(path)
		if err != nil {
			return e.usageError(cmd, "%s %s: %v", flag, path, pathCause(err))
		}
		f.Close()
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return e.usageError(cmd, "%s %s: no such file: give %s", flag, path, what)
	}
	return e.usageError(cmd, "%s %s: %v: give %s", flag, path, pathCause(err), what)
}

// pathCause is what went wrong with a path, without the path the flag
// message names already.
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

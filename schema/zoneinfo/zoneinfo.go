package zoneinfo

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	_ "embed"
)

//go:generate go run gen.go

// tzdata is the zip of TZif files, one per zone name, as Go's
// lib/time/zoneinfo.zip. A string, so that nothing can change it.
//
//go:embed zoneinfo.zip
var tzdata string

// ErrUnknownZone is returned by Load for a name the database does not hold.
// It never carries the name: zone names arrive in events.
var ErrUnknownZone = errors.New("zoneinfo: unknown time zone")

// DB loads zones from the embedded database. Its zero value is not usable;
// call New. A DB is safe for concurrent use, and loads each zone once.
type DB struct {
	files map[string]*zip.File
	err   error    // the embedded zip could not be read (a broken build)
	locs  sync.Map // zone name → *time.Location; zones never change
}

// New returns a DB over the embedded database.
func New() *DB {
	db := &DB{}
	r, err := zip.NewReader(strings.NewReader(tzdata), int64(len(tzdata)))
	if err != nil {
		db.err = fmt.Errorf("zoneinfo: read embedded database: %w", err)
		return db
	}
	db.files = make(map[string]*zip.File, len(r.File))
	for _, f := range r.File {
		db.files[f.Name] = f
	}
	return db
}

// Load returns the zone called name. "" and "Local" are not zones of the
// database: the machine's own zone has no place in a decision.
func (db *DB) Load(name string) (*time.Location, error) {
	if l, ok := db.locs.Load(name); ok {
		return l.(*time.Location), nil
	}
	if db.err != nil {
		return nil, db.err
	}
	f := db.files[name]
	if f == nil {
		return nil, ErrUnknownZone
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("zoneinfo: open zone: %w", err)
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("zoneinfo: read zone: %w", err)
	}
	l, err := time.LoadLocationFromTZData(name, data)
	if err != nil {
		return nil, fmt.Errorf("zoneinfo: parse zone: %w", err)
	}
	actual, _ := db.locs.LoadOrStore(name, l)
	return actual.(*time.Location), nil
}

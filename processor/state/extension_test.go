package state

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

// stored is a state as the build before the tagged extensions wrote it
// (key u1, zone Europe/Berlin, one event and one send at 2026-03-02 09:00
// UTC): stores and changelogs hold values like it.
const stored = "02027531000d4575726f70652f4265726c696e00018080ddaff6a6fd9831" +
	"0000000000000000000000000000000000000000000000000000000000000000" +
	"000000000000000000000001018080ddaff6a6fd9831017402"

func storedUser() *User {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	return &User{Key: "u1", Zone: "Europe/Berlin", LastEvent: at, Sends: []Send{{At: at, Trigger: "t", Step: 1}}}
}

// TestStoredStatesStillDecode pins backward compatibility: a value
// written before user.device existed decodes, and a state without a
// device still encodes to exactly those bytes.
func TestStoredStatesStillDecode(t *testing.T) {
	c := NewCodec()
	old, err := hex.DecodeString(stored)
	if err != nil {
		t.Fatal(err)
	}
	u, err := c.Unmarshal(old)
	if err != nil {
		t.Fatalf("stored state does not decode: %v", err)
	}
	if u.Device != "" || u.Key != "u1" || len(u.Sends) != 1 {
		t.Fatalf("stored state decoded as %+v", u)
	}
	b, err := c.Marshal(storedUser())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, old) {
		t.Fatalf("a state without a device encodes differently from before:\n got %x\nwant %s", b, stored)
	}
}

func TestDeviceExtension(t *testing.T) {
	c := NewCodec()
	u := storedUser()
	u.Device = "mobile"
	b, err := c.Marshal(u)
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if v.Device != "mobile" {
		t.Fatalf("device = %q, want mobile", v.Device)
	}
	// Version 1 (CBOR) carries it by its name.
	cb, err := c.marshalCBOR(u)
	if err != nil {
		t.Fatal(err)
	}
	if w, err := c.Unmarshal(cb); err != nil || w.Device != "mobile" {
		t.Fatalf("CBOR: device %q, err %v", w.Device, err)
	}
	old, _ := hex.DecodeString(stored)
	for name, bad := range map[string][]byte{
		"unknown tag":    append(bytes.Clone(old), 0x7f, 1, 'x'),
		"repeated tag":   append(bytes.Clone(b), extDevice, 1, 'x'),
		"empty device":   append(bytes.Clone(old), extDevice, 0),
		"truncated":      append(bytes.Clone(old), extDevice, 5, 'x'),
		"tag, no string": append(bytes.Clone(old), extDevice),
	} {
		if _, err := c.Unmarshal(bad); !errors.Is(err, errCorrupt) {
			t.Errorf("%s: err = %v, want corrupt", name, err)
		}
	}
}

package main

// A minimal protobuf wire-format walker: enough to check a push.v1.PushRequest and count what
// it carries, and to count the samples of a pprof profile. No allocation.

import "errors"

var errWire = errors.New("malformed protobuf")

const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// varint decodes a base-128 varint at the start of b and returns it and its length (0 if b does
// not start with a complete varint of at most 10 bytes).
func varint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		v |= uint64(c&0x7f) << (7 * uint(i))
		if c < 0x80 {
			return v, i + 1
		}
	}
	return 0, 0
}

// walk calls fn for every field of the message b, with the field's number, wire type and, for
// length-delimited fields, its payload. It stops at the first error fn returns.
func walk(b []byte, fn func(field int, wt int, payload []byte) error) error {
	for len(b) > 0 {
		key, n := varint(b)
		if n == 0 {
			return errWire
		}
		b = b[n:]
		field, wt := key>>3, int(key&7)
		if field == 0 || field > 1<<29-1 {
			return errWire
		}
		var payload []byte
		switch wt {
		case wireVarint:
			if _, n = varint(b); n == 0 {
				return errWire
			}
			b = b[n:]
		case wireFixed64:
			if len(b) < 8 {
				return errWire
			}
			b = b[8:]
		case wireFixed32:
			if len(b) < 4 {
				return errWire
			}
			b = b[4:]
		case wireBytes:
			l, n := varint(b)
			if n == 0 || l > uint64(len(b)-n) {
				return errWire
			}
			payload = b[n : n+int(l)]
			b = b[n+int(l):]
		default: // groups (3, 4) are not used by these messages; 6 and 7 do not exist
			return errWire
		}
		if err := fn(int(field), wt, payload); err != nil {
			return err
		}
	}
	return nil
}

// pushCounts is what one push.v1.PushRequest carries.
type pushCounts struct {
	series   int // RawProfileSeries
	profiles int // RawSample, one pprof blob each
	raw      int // bytes of raw_profile
}

// parsePush checks that b is a well-formed push.v1.PushRequest (the fields this receiver knows
// have the right wire types, nested messages parse) and counts its contents:
//
//	PushRequest      { repeated RawProfileSeries series = 1; }
//	RawProfileSeries { repeated LabelPair labels = 1; repeated RawSample samples = 2; ... }
//	LabelPair        { string name = 1; string value = 2; }
//	RawSample        { bytes raw_profile = 1; string ID = 2; }
//
// Unknown fields are skipped, as a protobuf parser would.
func parsePush(b []byte) (pushCounts, error) {
	var c pushCounts
	err := walk(b, func(f, wt int, series []byte) error {
		if f != 1 {
			return nil
		}
		if wt != wireBytes {
			return errWire
		}
		c.series++
		return walk(series, func(f, wt int, p []byte) error {
			switch f {
			case 1: // LabelPair
				if wt != wireBytes {
					return errWire
				}
				return walk(p, stringFields)
			case 2: // RawSample
				if wt != wireBytes {
					return errWire
				}
				c.profiles++
				return walk(p, func(f, wt int, p []byte) error {
					if f == 1 || f == 2 {
						if wt != wireBytes {
							return errWire
						}
						if f == 1 {
							c.raw += len(p)
						}
					}
					return nil
				})
			}
			return nil
		})
	})
	return c, err
}

// stringFields checks that fields 1 and 2 of a LabelPair are length-delimited.
func stringFields(f, wt int, _ []byte) error {
	if (f == 1 || f == 2) && wt != wireBytes {
		return errWire
	}
	return nil
}

// countSamples returns the number of samples (field 2) of an uncompressed pprof Profile.
func countSamples(profile []byte) (int, error) {
	n := 0
	err := walk(profile, func(f, wt int, _ []byte) error {
		if f == 2 && wt == wireBytes {
			n++
		}
		return nil
	})
	return n, err
}

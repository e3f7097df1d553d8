package schema

// ReferenceDecodeEvent is the decoder DecodeEvent replaced
// (reference_test.go), for the differential tests of package schema_test.
var ReferenceDecodeEvent = refDecodeEvent

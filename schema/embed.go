package schema

import _ "embed"

// EventJSONSchema is event.schema.json: the published form of the checks
// DecodeEvent makes, for producers that validate before they publish.
//
//go:embed event.schema.json
var EventJSONSchema string

// Package localmail holds the development transports: [Console] prints
// each locally rendered email (recipient masked) to a writer, and [Dir]
// writes one RFC 5322 .eml file per email (multipart/alternative: text and
// HTML) into a directory, which any mail client opens.
//
// They send nothing anywhere: they are what `microtrigger run` and
// `microtrigger sink --transport console|file` use to show what would be
// emailed. Messages come from sink/render's Local renderer through the
// sink's delivery loop.
package localmail

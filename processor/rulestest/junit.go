package rulestest

import (
	"encoding/xml"
)

// JUnit renders results as JUnit XML, one testsuite per file. A file that
// does not load is a testsuite with one errored testcase, "load", whose
// text lists the problems.
func JUnit(files []FileResult) []byte {
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Failure   *failure `xml:"failure,omitempty"`
		Error     *failure `xml:"error,omitempty"`
	}
	type testsuite struct {
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Errors   int        `xml:"errors,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	type testsuites struct {
		XMLName xml.Name    `xml:"testsuites"`
		Suites  []testsuite `xml:"testsuite"`
	}
	var out testsuites
	for i := range files {
		f := &files[i]
		s := testsuite{Name: f.File}
		if f.LoadErr != nil {
			text := f.LoadErr.Error()
			if le, ok := f.LoadErr.(*LoadError); ok {
				text = le.Format()
			}
			s.Tests, s.Errors = 1, 1
			s.Cases = append(s.Cases, testcase{Name: "load", Classname: f.File, Error: &failure{Message: "does not load", Text: text}})
		}
		for j := range f.Cases {
			r := &f.Cases[j]
			tc := testcase{Name: r.Name, Classname: f.File}
			if !r.Passed() {
				tc.Failure = &failure{Message: "expectations not met", Text: r.Format()}
				s.Failures++
			}
			s.Tests++
			s.Cases = append(s.Cases, tc)
		}
		out.Suites = append(out.Suites, s)
	}
	b, _ := xml.MarshalIndent(out, "", "  ")
	return append([]byte(xml.Header), append(b, '\n')...)
}

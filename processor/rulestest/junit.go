package rulestest

import (
	"encoding/xml"
)

// JUnit renders results as JUnit XML, one testsuite per file.
func JUnit(results []CaseResult) []byte {
	type failure struct {
		Message string `xml:"message,attr"`
		Text    string `xml:",chardata"`
	}
	type testcase struct {
		Name      string   `xml:"name,attr"`
		Classname string   `xml:"classname,attr"`
		Failure   *failure `xml:"failure,omitempty"`
	}
	type testsuite struct {
		Name     string     `xml:"name,attr"`
		Tests    int        `xml:"tests,attr"`
		Failures int        `xml:"failures,attr"`
		Cases    []testcase `xml:"testcase"`
	}
	type testsuites struct {
		XMLName xml.Name    `xml:"testsuites"`
		Suites  []testsuite `xml:"testsuite"`
	}
	var out testsuites
	index := map[string]int{}
	for i := range results {
		r := &results[i]
		si, ok := index[r.File]
		if !ok {
			si = len(out.Suites)
			index[r.File] = si
			out.Suites = append(out.Suites, testsuite{Name: r.File})
		}
		s := &out.Suites[si]
		tc := testcase{Name: r.Name, Classname: r.File}
		if !r.Passed() {
			tc.Failure = &failure{Message: "expectations not met", Text: r.Format()}
			s.Failures++
		}
		s.Tests++
		s.Cases = append(s.Cases, tc)
	}
	b, _ := xml.MarshalIndent(out, "", "  ")
	return append([]byte(xml.Header), append(b, '\n')...)
}

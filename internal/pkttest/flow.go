package pkttest

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// flow writes a YAML value on one line, as a case file may write it.
func flow(n *yaml.Node) string {
	c := flowCopy(deref(n))
	b, err := yaml.Marshal(c)
	if err != nil {
		return n.Value
	}
	return strings.TrimSpace(string(b))
}

// flowCopy copies a value in flow style, without its comments.
func flowCopy(n *yaml.Node) *yaml.Node {
	c := *deref(n)
	if c.Kind == yaml.MappingNode || c.Kind == yaml.SequenceNode {
		c.Style = yaml.FlowStyle
	}
	c.HeadComment, c.LineComment, c.FootComment = "", "", ""
	c.Content = nil
	for _, e := range deref(n).Content {
		c.Content = append(c.Content, flowCopy(e))
	}
	return &c
}

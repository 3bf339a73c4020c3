package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/dsrlab/dsrlab/topology"
)

// The docs are checked against the code, so that a renamed flag, command or
// topology field fails CI instead of misleading a reader: every topology in
// a ```yaml block parses, every `dsrlab ...` line names commands and flags
// that exist, every relative link reaches a file (and heading).

// fragmentBase is the lab a `# fragment: PATH` block is merged into: the
// reference lab with a program on katran, so that program, maps and VIP
// fragments all have a place.
const fragmentBase = "examples/xdp-lb-minimal/lab.yaml"

func TestDocs(t *testing.T) {
	repo := filepath.Join("..", "..")
	files := []string{"README.md"}
	for _, pattern := range []string{"docs/*.md", "examples/*/README.md"} {
		m, err := filepath.Glob(filepath.Join(repo, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			rel, _ := filepath.Rel(repo, f)
			files = append(files, filepath.ToSlash(rel))
		}
	}
	if len(files) < 10 {
		t.Fatalf("found only %v: the docs moved?", files)
	}
	c := newDocChecker(repo)
	for _, f := range files {
		for _, p := range c.check(f) {
			t.Error(p)
		}
	}
	t.Logf("checked %d topologies, %d fragments, %d commands, %d links", c.topologies, c.fragments, c.commands, c.links)
	if c.topologies == 0 || c.fragments == 0 || c.commands < 50 || c.links < 30 {
		t.Errorf("checked %d topologies, %d fragments, %d commands, %d links: the extraction is broken",
			c.topologies, c.fragments, c.commands, c.links)
	}
}

// TestReadmeListsEveryCommand: the README's command table names every
// command a user can run, so a new one cannot go undocumented.
func TestReadmeListsEveryCommand(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	listed := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(l, "| `dsrlab") {
			continue
		}
		for _, m := range codeSpan.FindAllStringSubmatch(l, -1) {
			for _, args := range commandLines(syntaxWords(m[1])) {
				expandPaths(root, args, "dsrlab", listed)
			}
		}
	}
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		for _, s := range cmd.Commands() {
			if s.Hidden || s.Name() == "help" {
				continue
			}
			if s.Runnable() && !listed[s.CommandPath()] {
				t.Errorf("README.md's command table has no row for %q", s.CommandPath())
			}
			walk(s)
		}
	}
	walk(root)
}

// expandPaths adds the command paths args names (each of `add|drain`).
func expandPaths(cmd *cobra.Command, args []string, path string, into map[string]bool) {
	into[path] = true
	if len(args) == 0 {
		return
	}
	for _, alt := range strings.Split(args[0], "|") {
		if s := findSub(cmd, alt); s != nil {
			expandPaths(s, args[1:], path+" "+s.Name(), into)
		}
	}
}

// TestDocsCheckerCatches plants one mistake of each kind and wants each
// reported: a checker that finds nothing proves nothing.
func TestDocsCheckerCatches(t *testing.T) {
	repo := t.TempDir()
	base, err := os.ReadFile(filepath.Join("..", "..", fragmentBase))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(fragmentBase, string(base))
	write("docs/OTHER.md", "# Other page\n\n## A section\n")
	write("labs/dsr.yaml", "")
	write("Makefile", "test:\n\tgo test ./...\n")
	bad := "# Bad\n\n" +
		"```shell\ndsrlab up -t labs/dsr.yaml --reconfigure   # fine\n" +
		"sudo dsrlab verify --nme lab\n" + // a misspelt flag
		"dsrlab vrify\n" + // a command that does not exist
		"dsrlab real drian VIP real\n" + // a subcommand that does not exist
		"dsrlab up -t labs/gone.yaml\n" + // a lab file that does not exist
		"```\n\n" +
		"```console\n$ dsrlab graph --format dot\n$ dsrlab inspect --formt json\noutput dsrlab --not-a-command\n```\n\n" +
		"| command | what |\n|---|---|\n| `dsrlab stats [--format table\\|json]` | fine; `--limit N` is not a stats flag |\n" +
		"| `dsrlab real add\\|drain\\|purge VIP NODE` | purge is no subcommand |\n\n" +
		"Prose: `dsrlab trace --help` is fine, `dsrlab trace --form NODE` is not.\n\n" +
		"```yaml\nname: bad\nnodes:\n  client: {kind: clint}\n```\n\n" +
		"```yaml\n# fragment: nodes.katran.program\n  globals: {ttl: 1}\n  interfaec: eth0\n```\n\n" +
		"```yaml\nvips:\n  - address: 192.168.10.1\n```\n\n" +
		"```yaml\n  real:\n    kind: real\n```\n\n" + // a node, unmarked
		"```yaml\n- run: sudo dsrlab tset cases.yaml\n```\n\n" +
		"```yaml\n# fragment: nodes\n  katran: {kind: katran, xdp: fast}\n```\n\n" +
		"[fine](docs/OTHER.md#a-section), [gone](docs/GONE.md), [no heading](docs/OTHER.md#nope), [self](#bad), [no self heading](#nowhere); `labs/*.yaml`, `make test`, `labs/gone.yaml`, `make nothing`\n"
	write("BAD.md", bad)
	c := newDocChecker(repo)
	got := strings.Join(c.check("BAD.md"), "\n")
	for _, want := range []string{
		`BAD.md:5: dsrlab verify --nme lab: unknown flag --nme of "dsrlab verify"`,
		`BAD.md:6: dsrlab vrify: unknown command "vrify" of "dsrlab"`,
		`BAD.md:7: dsrlab real drian VIP real: unknown command "drian" of "dsrlab real"`,
		`BAD.md:8: dsrlab up -t labs/gone.yaml: labs/gone.yaml does not exist`,
		`BAD.md:13: dsrlab inspect --formt json: unknown flag --formt`,
		`BAD.md:19: dsrlab stats --limit N: unknown flag --limit of "dsrlab stats"`,
		`BAD.md:20: dsrlab real add|drain|purge VIP NODE: unknown command "purge"`,
		`BAD.md:22: dsrlab trace --form NODE: unknown flag --form`,
		`BAD.md:24: topology: `, `nodes.client.kind`,
		`BAD.md:30: fragment`, `interfaec`,
		`BAD.md:36: a yaml block with topology fields (vips) that is neither a whole topology nor marked`,
		`BAD.md:41: a yaml block with topology fields (real.kind)`,
		`BAD.md:47: dsrlab tset cases.yaml: unknown command "tset"`,
		`BAD.md:50: fragment merged into examples/xdp-lb-minimal/lab.yaml: merged:`, `nodes.katran.xdp: "fast" is not an XDP mode`,
		`BAD.md:55: link docs/GONE.md: no such file`,
		`BAD.md:55: link docs/OTHER.md#nope: no heading "nope"`,
		`BAD.md:55: link #nowhere: no heading "nowhere"`,
		`BAD.md:55: labs/gone.yaml: no such file in the repository`,
		`BAD.md:55: make nothing: no such target in the Makefile`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the checker did not report %q; it reported:\n%s", want, got)
		}
	}
	for _, fine := range []string{"--reconfigure", "--format dot", "#a-section", "#bad", "output dsrlab", "--help", "labs/*", "make test"} {
		if strings.Contains(got, fine) {
			t.Errorf("the checker reported something correct (%s):\n%s", fine, got)
		}
	}
}

type docChecker struct {
	repo  string
	root  *cobra.Command
	heads map[string][]string // file -> heading anchors

	topologies, fragments, commands, links int
}

func newDocChecker(repo string) *docChecker {
	root := newRootCmd()
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	return &docChecker{repo: repo, root: root, heads: map[string][]string{}}
}

// mdBlock is a fenced code block; line is the line of its opening fence.
type mdBlock struct {
	lang string
	line int
	body []string
}

// mdProse is a run of lines outside code blocks, starting at line.
type mdProse struct {
	line  int
	lines []string
}

// splitMarkdown separates fenced blocks (also indented, inside list items)
// from the prose around them.
func splitMarkdown(text string) (blocks []mdBlock, prose []mdProse) {
	var cur *mdBlock
	indent := ""
	for i, l := range strings.Split(text, "\n") {
		trimmed := strings.TrimLeft(l, " ")
		if cur == nil && strings.HasPrefix(trimmed, "```") {
			indent = l[:len(l)-len(trimmed)]
			cur = &mdBlock{lang: strings.TrimSpace(strings.TrimPrefix(trimmed, "```")), line: i + 1}
			continue
		}
		if cur != nil {
			if strings.HasPrefix(trimmed, "```") {
				blocks = append(blocks, *cur)
				cur = nil
				continue
			}
			cur.body = append(cur.body, strings.TrimPrefix(l, indent))
			continue
		}
		if len(prose) == 0 || prose[len(prose)-1].line+len(prose[len(prose)-1].lines) != i+1 {
			prose = append(prose, mdProse{line: i + 1})
		}
		prose[len(prose)-1].lines = append(prose[len(prose)-1].lines, l)
	}
	return blocks, prose
}

func (c *docChecker) check(file string) []string {
	data, err := os.ReadFile(filepath.Join(c.repo, file))
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	report := func(line int, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: ", file, line)+fmt.Sprintf(format, args...))
	}
	blocks, prose := splitMarkdown(string(data))
	for _, b := range blocks {
		switch b.lang {
		case "yaml", "yml":
			if err := c.checkYAML(b); err != "" {
				report(b.line, "%s", err)
			}
			// A CI step's command.
			for i, l := range b.body {
				if _, run, ok := strings.Cut(l, "run: "); ok {
					for _, args := range commandLines(shellWords(run)) {
						if err := c.checkCommand(args); err != "" {
							report(b.line+1+i, "dsrlab %s: %s", strings.Join(args, " "), err)
						}
					}
				}
			}
		case "", "shell", "sh", "bash", "console":
			prompted := slices.ContainsFunc(b.body, func(l string) bool { return strings.HasPrefix(l, "$ ") })
			for i, l := range b.body {
				if prompted {
					if !strings.HasPrefix(l, "$ ") {
						continue // the command's output
					}
					l = l[2:]
				}
				for _, args := range commandLines(shellWords(l)) {
					if err := c.checkCommand(args); err != "" {
						report(b.line+1+i, "dsrlab %s: %s", strings.Join(args, " "), err)
					}
				}
			}
		}
	}
	for _, p := range prose {
		problems = append(problems, c.checkProse(file, p)...)
	}
	return problems
}

var (
	codeSpan = regexp.MustCompile("`([^`]+)`")
	// repoPath is inline code that names a file of the repository; a Go
	// identifier after it (internal/bgp.Config) is not part of the path.
	repoPath   = regexp.MustCompile(`^((?:labs|scripts|examples|docs|bpf|internal|cmd|topology|schemas|e2e|\.ci)/[A-Za-z0-9_./*-]*?)(\.[A-Z]\w*)?$`)
	makeTarget = regexp.MustCompile(`^make ([a-z-]+)`)
)

// checkRepoRef checks inline code that names a file of the repository
// (`labs/dsr.yaml`, `scripts/*.sh`) or a make target (`make bench`).
func (c *docChecker) checkRepoRef(span string) string {
	if m := repoPath.FindStringSubmatch(span); m != nil {
		if found, _ := filepath.Glob(filepath.Join(c.repo, strings.TrimSuffix(m[1], "/"))); len(found) == 0 {
			return fmt.Sprintf("%s: no such file in the repository", m[1])
		}
	}
	if m := makeTarget.FindStringSubmatch(span); m != nil {
		mk, err := os.ReadFile(filepath.Join(c.repo, "Makefile"))
		if err != nil || !regexp.MustCompile(`(?m)^`+m[1]+`:`).Match(mk) {
			return fmt.Sprintf("make %s: no such target in the Makefile", m[1])
		}
	}
	return ""
}

// checkProse checks the commands in inline code and the relative links of
// one run of prose. In a table row, a span of flags alone (`--resolved`) is
// checked as flags of the row's first command.
func (c *docChecker) checkProse(file string, p mdProse) []string {
	var problems []string
	for i, l := range p.lines {
		line := p.line + i
		var rowCmd []string
		for _, m := range codeSpan.FindAllStringSubmatch(l, -1) {
			if err := c.checkRepoRef(m[1]); err != "" {
				problems = append(problems, fmt.Sprintf("%s:%d: %s", file, line, err))
			}
			words := syntaxWords(m[1])
			var lines [][]string
			if len(words) > 0 && strings.HasPrefix(words[0], "-") && rowCmd != nil && strings.HasPrefix(l, "|") {
				lines = [][]string{append(slices.Clone(rowCmd), words...)}
			} else {
				lines = commandLines(words)
			}
			for _, args := range lines {
				if rowCmd == nil && strings.HasPrefix(l, "|") {
					rowCmd = commandPath(c.root, args)
				}
				if err := c.checkCommand(args); err != "" {
					problems = append(problems, fmt.Sprintf("%s:%d: dsrlab %s: %s", file, line, strings.Join(args, " "), err))
				}
			}
		}
		for _, err := range c.checkLinks(file, codeSpan.ReplaceAllString(l, "")) {
			problems = append(problems, fmt.Sprintf("%s:%d: %s", file, line, err))
		}
	}
	// A span broken over two lines of a paragraph.
	joined := strings.Join(p.lines, " ")
	for _, m := range codeSpan.FindAllStringSubmatch(joined, -1) {
		if slices.ContainsFunc(p.lines, func(l string) bool { return strings.Contains(l, m[0]) }) {
			continue
		}
		for _, args := range commandLines(syntaxWords(m[1])) {
			if err := c.checkCommand(args); err != "" {
				problems = append(problems, fmt.Sprintf("%s:%d: dsrlab %s: %s", file, p.line, strings.Join(args, " "), err))
			}
		}
	}
	return problems
}

// shellWords splits a shell line into words and the operators && || | ;
// (as words of their own), honouring quotes and dropping a comment.
func shellWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == '\'' || ch == '"':
			end := strings.IndexByte(line[i+1:], ch)
			if end < 0 {
				end = len(line) - i - 1
			}
			cur.WriteString(line[i+1 : i+1+end])
			inWord = true
			i += end + 1
		case ch == '#' && !inWord:
			flush()
			return words
		case ch == ' ' || ch == '\t':
			flush()
		case ch == '&' || ch == '|' || ch == ';':
			flush()
			op := string(ch)
			if i+1 < len(line) && line[i+1] == ch && ch != ';' {
				op += string(ch)
				i++
			}
			words = append(words, op)
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	flush()
	return words
}

// syntaxWords splits an inline command synopsis such as
// `dsrlab down [-t FILE \| --name LAB]`: brackets and lone bars go,
// `add\|drain` stays one word of alternatives.
func syntaxWords(span string) []string {
	span = strings.ReplaceAll(span, `\|`, "|")
	var words []string
	for _, w := range strings.Fields(span) {
		w = strings.Trim(w, "[]")
		if w == "|" || w == "" {
			continue
		}
		if w == "&&" || w == ";" {
			words = append(words, w)
			continue
		}
		words = append(words, w)
	}
	return words
}

// commandLines returns the arguments of each dsrlab command among words:
// after an operator, env assignments and sudo with its options.
func commandLines(words []string) [][]string {
	var lines [][]string
	start := true
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "&&" || w == "||" || w == "|" || w == ";":
			start = true
			continue
		case !start:
			continue
		case w == "sudo" || strings.HasPrefix(w, "-") || (strings.Contains(w, "=") && !strings.HasPrefix(w, "=")):
			continue
		case w == "dsrlab" || strings.HasSuffix(w, "/dsrlab"):
			j := i + 1
			for j < len(words) && !slices.Contains([]string{"&&", "||", "|", ";"}, words[j]) {
				j++
			}
			lines = append(lines, words[i+1:j])
			i = j - 1
		}
		start = false
	}
	return lines
}

func findSub(cmd *cobra.Command, name string) *cobra.Command {
	for _, s := range cmd.Commands() {
		if s.Name() == name || s.HasAlias(name) {
			return s
		}
	}
	return nil
}

// commandPath is the words of args that name (sub)commands, for checking
// a table row's lone flags against the row's command.
func commandPath(root *cobra.Command, args []string) []string {
	var path []string
	cmd := root
	for _, a := range args {
		s := findSub(cmd, strings.Split(a, "|")[0])
		if s == nil {
			break
		}
		path = append(path, a)
		cmd = s
	}
	return path
}

func lookupFlag(cmd *cobra.Command, name string, short bool) *pflag.Flag {
	for _, fs := range []*pflag.FlagSet{cmd.Flags(), cmd.InheritedFlags()} {
		if short {
			if f := fs.ShorthandLookup(name); f != nil {
				return f
			}
		} else if f := fs.Lookup(name); f != nil {
			return f
		}
	}
	return nil
}

// checkCommand walks args down cobra's tree: every subcommand must exist
// (each of `add|drain|remove`), every flag must be the command's or
// inherited (of one of the alternatives); a value after a flag that takes
// one is skipped.
func (c *docChecker) checkCommand(args []string) string {
	c.commands++
	cmds, positional := []*cobra.Command{c.root}, 0
	path := func() string {
		var names []string
		for _, cmd := range cmds {
			names = append(names, cmd.Name())
		}
		return strings.TrimSuffix(cmds[0].CommandPath(), cmds[0].Name()) + strings.Join(names, "|")
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if a == "--help" || a == "-h" {
			continue
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
			short := !strings.HasPrefix(a, "--")
			if short && len(name) > 1 {
				hasValue, name = true, name[:1] // -c5
			}
			var f *pflag.Flag
			for _, cmd := range cmds {
				if f = lookupFlag(cmd, name, short); f != nil {
					break
				}
			}
			if f == nil {
				return fmt.Sprintf("unknown flag %s of %q", strings.TrimSuffix(a, "="+value), path())
			}
			if f.NoOptDefVal == "" && !hasValue {
				i++
			}
			if f.Name == "topology" && i < len(args) && strings.HasPrefix(args[i], "labs/") {
				if _, err := os.Stat(filepath.Join(c.repo, args[i])); err != nil {
					return args[i] + " does not exist"
				}
			}
			continue
		}
		if positional == 0 && cmds[0].HasSubCommands() {
			var next []*cobra.Command
			for _, alt := range strings.Split(a, "|") {
				s := findSub(cmds[0], alt)
				if s == nil {
					if cmds[0].Runnable() && len(next) == 0 {
						break // a positional argument
					}
					return fmt.Sprintf("unknown command %q of %q", alt, path())
				}
				next = append(next, s)
			}
			if next != nil {
				cmds = next
				continue
			}
		}
		positional++
	}
	if !cmds[0].Runnable() && cmds[0].HasSubCommands() && len(args) > 0 {
		return fmt.Sprintf("%q needs a subcommand", path())
	}
	return ""
}

// topologyKeys are fields that make a block a piece of a topology, at its
// top or one level down (a node's fields under its name).
var topologyKeys = []string{"nodes", "links", "vips", "hosts", "program", "programs", "defaults", "kind", "maps", "globals"}

// checkYAML parses a whole topology as it stands; a block whose first line
// is `# fragment: PATH [in FILE]` is merged at PATH (dotted, "." for the
// top) into FILE (default fragmentBase) and the result parsed. A block that has topology fields but
// is neither must be marked, or it would escape the check.
func (c *docChecker) checkYAML(b mdBlock) string {
	text := strings.Join(b.body, "\n")
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return "yaml: " + err.Error()
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return ""
	}
	top := doc.Content[0]
	if len(b.body) > 0 && strings.HasPrefix(strings.TrimSpace(b.body[0]), "# fragment:") {
		c.fragments++
		path, baseFile, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(b.body[0]), "# fragment:")), " in ")
		if baseFile == "" {
			baseFile = fragmentBase
		}
		data, err := os.ReadFile(filepath.Join(c.repo, baseFile))
		if err != nil {
			return "fragment: " + err.Error()
		}
		var base yaml.Node
		if err := yaml.Unmarshal(data, &base); err != nil {
			return baseFile + ": " + err.Error()
		}
		at := base.Content[0]
		if path != "." {
			for _, key := range strings.Split(path, ".") {
				at = mappingValue(at, key)
			}
		}
		mergeMapping(at, top)
		merged, err := yaml.Marshal(&base)
		if err != nil {
			return err.Error()
		}
		if _, err := topology.Parse(merged, "merged"); err != nil {
			return "fragment merged into " + baseFile + ": " + err.Error()
		}
		return ""
	}
	if mappingValue(top, "name", false) != nil && mappingValue(top, "nodes", false) != nil {
		c.topologies++
		if _, err := topology.Parse([]byte(text), "block"); err != nil {
			return "topology: " + err.Error()
		}
		return ""
	}
	if mappingValue(top, "cases", false) != nil {
		return "" // a case file of `dsrlab test`: its program: is no topology's
	}
	var keys []string
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if slices.Contains(topologyKeys, k.Value) {
			keys = append(keys, k.Value)
		}
		for j := 0; v.Kind == yaml.MappingNode && j < len(v.Content); j += 2 {
			if slices.Contains(topologyKeys, v.Content[j].Value) {
				keys = append(keys, k.Value+"."+v.Content[j].Value)
			}
		}
		// Map entries: a list of {key, value}.
		if v.Kind == yaml.SequenceNode && len(v.Content) > 0 && v.Content[0].Kind == yaml.MappingNode &&
			mappingValue(v.Content[0], "key", false) != nil && mappingValue(v.Content[0], "value", false) != nil {
			keys = append(keys, k.Value+"[].key")
		}
	}
	if len(keys) > 0 {
		return fmt.Sprintf("a yaml block with topology fields (%s) that is neither a whole topology nor marked `# fragment: PATH` (docs/TESTS.md)", strings.Join(keys, ", "))
	}
	return ""
}

// mappingValue returns the value of key in mapping m, added as an empty
// mapping when missing (unless create is false: then nil).
func mappingValue(m *yaml.Node, key string, create ...bool) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	if len(create) > 0 && !create[0] {
		return nil
	}
	v := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v
}

// mergeMapping writes src's keys into dst: mappings merge, anything else
// replaces.
func mergeMapping(dst, src *yaml.Node) {
	if dst.Kind != yaml.MappingNode {
		*dst = *src
		return
	}
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := src.Content[i], src.Content[i+1]
		if old := mappingValue(dst, k.Value, false); old != nil {
			if old.Kind == yaml.MappingNode && v.Kind == yaml.MappingNode {
				mergeMapping(old, v)
			} else {
				*old = *v
			}
			continue
		}
		dst.Content = append(dst.Content, k, v)
	}
}

var mdLink = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)\)`)

// checkLinks checks the relative links of one line: the file exists and,
// for a Markdown file, the #anchor is one of its headings.
func (c *docChecker) checkLinks(file, line string) []string {
	var problems []string
	for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		c.links++
		path, anchor, _ := strings.Cut(target, "#")
		resolved := file
		if path != "" {
			resolved = filepath.ToSlash(filepath.Join(filepath.Dir(file), path))
			if _, err := os.Stat(filepath.Join(c.repo, resolved)); err != nil {
				problems = append(problems, fmt.Sprintf("link %s: no such file", target))
				continue
			}
		}
		if anchor == "" || !strings.HasSuffix(resolved, ".md") {
			continue
		}
		if !slices.Contains(c.anchors(resolved), anchor) {
			problems = append(problems, fmt.Sprintf("link %s: no heading %q in %s", target, anchor, resolved))
		}
	}
	return problems
}

// anchors lists the anchors GitHub gives the headings of a Markdown file.
func (c *docChecker) anchors(file string) []string {
	if a, ok := c.heads[file]; ok {
		return a
	}
	data, _ := os.ReadFile(filepath.Join(c.repo, file))
	_, prose := splitMarkdown(string(data))
	seen := map[string]int{}
	var anchors []string
	for _, p := range prose {
		for _, l := range p.lines {
			if !strings.HasPrefix(l, "#") {
				continue
			}
			title := strings.TrimSpace(strings.TrimLeft(l, "#"))
			var slug bytes.Buffer
			for _, r := range strings.ToLower(title) {
				switch {
				case r == ' ':
					slug.WriteRune('-')
				case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r):
					slug.WriteRune(r)
				}
			}
			s := slug.String()
			if n := seen[s]; n > 0 {
				anchors = append(anchors, fmt.Sprintf("%s-%d", s, n))
			} else {
				anchors = append(anchors, s)
			}
			seen[s]++
		}
	}
	c.heads[file] = anchors
	return anchors
}

// TestExampleReadmes: an example's README runs as written, the way the
// e2e tests run the example (e2e/programs_test.go): written out by
// `dsrlab example NAME`, its cases run, `up -t lab.yaml`, the VIP asked
// through the lab's own client container, its maps read by the lab's name.
func TestExampleReadmes(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join("..", "..", "examples", "*", "README.md"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no example READMEs: %v", err)
	}
	for _, readme := range dirs {
		dir := filepath.Dir(readme)
		name := filepath.Base(dir)
		t.Run(name, func(t *testing.T) {
			topo, err := topology.Load(filepath.Join(dir, "lab.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			containers := map[string]bool{}
			for _, n := range topo.Nodes {
				containers[n.ContainerName] = true
			}
			data, err := os.ReadFile(readme)
			if err != nil {
				t.Fatal(err)
			}
			blocks, _ := splitMarkdown(string(data))
			seen := map[string]bool{}
			for _, b := range blocks {
				for _, l := range b.body {
					words := shellWords(l)
					if len(words) > 2 && words[0] == "docker" && words[1] == "exec" {
						i := 2
						for i < len(words) && strings.HasPrefix(words[i], "-") {
							i++
						}
						if i == len(words) || !containers[words[i]] {
							t.Errorf("%s: %q: not a container of the example's lab (%s, prefix %q)", readme, l, topo.Name, topo.Prefix)
						}
						seen["docker exec"] = true
					}
					for _, args := range commandLines(words) {
						if len(args) == 0 {
							continue
						}
						seen[args[0]] = true
						for i, a := range args[:len(args)-1] {
							switch {
							case a == "--name" && args[i+1] != topo.Name:
								t.Errorf("%s: %q: the lab is named %q", readme, l, topo.Name)
							case (a == "-t" || a == "--topology") && args[i+1] != "lab.yaml":
								t.Errorf("%s: %q: the example's lab is lab.yaml", readme, l)
							}
						}
						switch args[0] {
						case "example":
							if len(args) < 2 || args[1] != name {
								t.Errorf("%s: %q: the example is %s", readme, l, name)
							}
						case "test":
							if !slices.Contains(args, "cases.yaml") {
								t.Errorf("%s: %q: the example's cases are cases.yaml", readme, l)
							}
						}
					}
				}
			}
			for _, step := range []string{"example", "test", "up", "docker exec", "map"} {
				if !seen[step] {
					t.Errorf("%s shows no %q step", readme, step)
				}
			}
		})
	}
}

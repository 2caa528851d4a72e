package canonicaljson

import (
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// MaxDepth is how deeply arrays and objects may nest.
const MaxDepth = 1000

// MaxSafeInteger is the largest integer canonical JSON allows, 2^53−1.
const MaxSafeInteger = 1<<53 - 1

// ParseStrict parses data under the rules room versions 6 and later and the
// client API enforce: integers only, within ±(2^53−1), no duplicate keys,
// valid UTF-8 and no lone surrogates (spec appendices "Canonical JSON";
// rooms/fragments/v6-canonical-json.md).
func ParseStrict(data []byte) (Value, error) { return Parse(data, true) }

// ParseLenient parses data the way events of room versions 1–5 must be
// accepted (rooms/fragments/v1-canonical-json.md): floats and integers of
// any size are kept, the last of duplicate keys wins and lone surrogates
// become U+FFFD. Invalid UTF-8 is still rejected: it is not JSON.
func ParseLenient(data []byte) (Value, error) { return Parse(data, false) }

// Parse parses data, strictly or leniently.
func Parse(data []byte, strict bool) (Value, error) {
	if !utf8.Valid(data) {
		return Value{}, errAt(ErrInvalidUTF8, invalidUTF8At(data), "invalid UTF-8 sequence")
	}
	// One copy of the input: every string without escapes is then a
	// substring of it and costs no allocation.
	p := parserPool.Get().(*parser)
	*p = parser{src: string(data), strict: strict, members: p.members[:0], elems: p.elems[:0], keys: p.keys[:0], buf: p.buf[:0]}
	defer func() {
		// An error leaves members and elements of the unfinished
		// containers on the scratch stacks; do not keep them alive.
		clear(p.members[:cap(p.members)])
		clear(p.elems[:cap(p.elems)])
		p.src = ""
		parserPool.Put(p)
	}()
	p.skipSpace()
	v, err := p.value()
	if err != nil {
		return Value{}, err
	}
	p.skipSpace()
	if p.pos != len(p.src) {
		return Value{}, errAt(ErrSyntax, p.pos, "unexpected %q after the value", p.src[p.pos])
	}
	return v, nil
}

// Validate checks data as Parse does without building the value: what the
// client API runs on every request body before decoding it into its own
// types. It allocates nothing for well-formed input.
func Validate(data []byte, strict bool) error {
	if !utf8.Valid(data) {
		return errAt(ErrInvalidUTF8, invalidUTF8At(data), "invalid UTF-8 sequence")
	}
	p := parserPool.Get().(*parser)
	// No string made from src outlives this call (error messages copy what
	// they quote, and the key stack is cleared below), so the input need
	// not be copied.
	*p = parser{src: unsafe.String(unsafe.SliceData(data), len(data)), strict: strict, discard: true,
		members: p.members[:0], elems: p.elems[:0], keys: p.keys[:0], buf: p.buf[:0]}
	defer func() {
		clear(p.keys[:cap(p.keys)])
		p.src = ""
		parserPool.Put(p)
	}()
	p.skipSpace()
	if _, err := p.value(); err != nil {
		return err
	}
	p.skipSpace()
	if p.pos != len(p.src) {
		return errAt(ErrSyntax, p.pos, "unexpected %q after the value", p.src[p.pos])
	}
	return nil
}

// parserPool recycles parsers with their scratch stacks, which the members
// and elements of open containers pass through.
var parserPool = sync.Pool{New: func() any { return new(parser) }}

func invalidUTF8At(data []byte) int {
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(data)
}

type parser struct {
	src    string
	pos    int
	strict bool
	depth  int
	// Scratch stacks: members and elements of the open containers are
	// collected here and copied out once, exactly sized, when they close.
	members []Member
	elems   []Value
	// discard: only validate (Validate); containers and strings are not
	// built, and keys go to the keys stack for the duplicate check.
	discard bool
	keys    []string
	buf     []byte // scratch for decoding escaped strings
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value() (Value, error) {
	if p.pos >= len(p.src) {
		return Value{}, errAt(ErrSyntax, p.pos, "unexpected end of input")
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, err := p.string(!p.discard)
		return Value{kind: String, str: s}, err
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return p.literal("true", Value{kind: Bool, b: true})
	case c == 'f':
		return p.literal("false", Value{kind: Bool})
	case c == 'n':
		return p.literal("null", Value{})
	default:
		return Value{}, errAt(ErrSyntax, p.pos, "unexpected %q", c)
	}
}

func (p *parser) literal(word string, v Value) (Value, error) {
	if len(p.src)-p.pos < len(word) || p.src[p.pos:p.pos+len(word)] != word {
		return Value{}, errAt(ErrSyntax, p.pos, "invalid literal")
	}
	p.pos += len(word)
	return v, nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > MaxDepth {
		return errAt(ErrTooDeep, p.pos, "more than %d levels", MaxDepth)
	}
	return nil
}

func (p *parser) object() (Value, error) {
	if err := p.enter(); err != nil {
		return Value{}, err
	}
	start := p.pos
	p.pos++ // '{'
	base, kbase := len(p.members), len(p.keys)
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		p.depth--
		return Value{kind: Object, obj: []Member{}}, nil
	}
	for {
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			p.members = p.members[:base]
			return Value{}, errAt(ErrSyntax, p.pos, "expected a string key")
		}
		key, err := p.string(!p.discard || p.strict)
		if err != nil {
			p.members = p.members[:base]
			return Value{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			p.members = p.members[:base]
			return Value{}, errAt(ErrSyntax, p.pos, "expected ':' after key %q", key)
		}
		p.pos++
		p.skipSpace()
		v, err := p.value()
		if err != nil {
			p.members = p.members[:base]
			return Value{}, err
		}
		if p.discard {
			if p.strict {
				p.keys = append(p.keys, key)
			}
		} else {
			p.members = append(p.members, Member{Key: key, Value: v})
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			p.members = p.members[:base]
			return Value{}, errAt(ErrSyntax, p.pos, "unterminated object")
		}
		if c := p.src[p.pos]; c == ',' {
			p.pos++
			p.skipSpace()
			continue
		} else if c != '}' {
			p.members = p.members[:base]
			return Value{}, errAt(ErrSyntax, p.pos, "expected ',' or '}' in object")
		}
		p.pos++
		break
	}
	if p.discard {
		p.depth--
		return Value{kind: Object}, p.checkKeys(kbase, start)
	}
	ms := make([]Member, len(p.members)-base)
	copy(ms, p.members[base:])
	clear(p.members[base:]) // let the scratch stack drop references
	p.members = p.members[:base]
	ms, dup, hasDup := sortMembers(ms)
	if hasDup && p.strict {
		return Value{}, errAt(ErrDuplicateKey, start, "key %q appears twice", dup)
	}
	p.depth--
	return Value{kind: Object, obj: ms}, nil
}

func (p *parser) array() (Value, error) {
	if err := p.enter(); err != nil {
		return Value{}, err
	}
	p.pos++ // '['
	base := len(p.elems)
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		p.depth--
		return Value{kind: Array, arr: []Value{}}, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			p.elems = p.elems[:base]
			return Value{}, err
		}
		if !p.discard {
			p.elems = append(p.elems, v)
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			p.elems = p.elems[:base]
			return Value{}, errAt(ErrSyntax, p.pos, "unterminated array")
		}
		if c := p.src[p.pos]; c == ',' {
			p.pos++
			p.skipSpace()
			continue
		} else if c != ']' {
			p.elems = p.elems[:base]
			return Value{}, errAt(ErrSyntax, p.pos, "expected ',' or ']' in array")
		}
		p.pos++
		break
	}
	if p.discard {
		p.depth--
		return Value{kind: Array}, nil
	}
	arr := make([]Value, len(p.elems)-base)
	copy(arr, p.elems[base:])
	clear(p.elems[base:])
	p.elems = p.elems[:base]
	p.depth--
	return Value{kind: Array, arr: arr}, nil
}

// checkKeys reports a duplicate among the keys of the object that started
// at start, pushed on the key stack from kbase, and pops them.
func (p *parser) checkKeys(kbase, start int) error {
	keys := p.keys[kbase:]
	defer func() { p.keys = p.keys[:kbase] }()
	if len(keys) < 2 {
		return nil
	}
	slices.Sort(keys)
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			return errAt(ErrDuplicateKey, start, "key %q appears twice", keys[i])
		}
	}
	return nil
}

// string parses a string starting at the opening quote. Strings without
// escapes are returned as substrings of the input; escaped ones are only
// decoded into a new string when keep is set.
func (p *parser) string(keep bool) (string, error) {
	start := p.pos
	p.pos++
	for i := p.pos; i < len(p.src); i++ {
		switch c := p.src[i]; {
		case c == '"':
			p.pos = i + 1
			return p.src[start+1 : i], nil
		case c == '\\':
			return p.escapedString(start, i, keep)
		case c < 0x20:
			return "", errAt(ErrSyntax, i, "control character %#02x in string", c)
		}
	}
	return "", errAt(ErrSyntax, start, "unterminated string")
}

func (p *parser) escapedString(start, i int, keep bool) (string, error) {
	buf := append(p.buf[:0], p.src[start+1:i]...)
	defer func() { p.buf = buf[:0] }()
	for i < len(p.src) {
		c := p.src[i]
		switch {
		case c == '"':
			p.pos = i + 1
			if !keep {
				return "", nil
			}
			return string(buf), nil
		case c < 0x20:
			return "", errAt(ErrSyntax, i, "control character %#02x in string", c)
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		if i+1 >= len(p.src) {
			break
		}
		esc := p.src[i+1]
		i += 2
		switch esc {
		case '"', '\\', '/':
			buf = append(buf, esc)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := hex4(p.src, i)
			if !ok {
				return "", errAt(ErrSyntax, i-2, "bad \\u escape")
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if r < 0xdc00 && i+6 <= len(p.src) && p.src[i] == '\\' && p.src[i+1] == 'u' {
					if lo, ok := hex4(p.src, i+2); ok && lo >= 0xdc00 && lo < 0xe000 {
						r2 = lo
					}
				}
				if r2 < 0 {
					if p.strict {
						return "", errAt(ErrInvalidUnicode, i-6, "lone surrogate \\u%04x", r)
					}
					r = utf8.RuneError
				} else {
					r = utf16.DecodeRune(r, r2)
					i += 6
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", errAt(ErrSyntax, i-2, "invalid escape \\%c", esc)
		}
	}
	return "", errAt(ErrSyntax, start, "unterminated string")
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

func (p *parser) number() (Value, error) {
	start := p.pos
	i := p.pos
	if p.src[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(p.src) && p.src[i] >= '0' && p.src[i] <= '9' {
			i++
			n++
		}
		return n
	}
	switch {
	case i < len(p.src) && p.src[i] == '0':
		i++
	case digits() == 0:
		return Value{}, errAt(ErrSyntax, start, "invalid number")
	}
	integer := true
	if i < len(p.src) && p.src[i] == '.' {
		i++
		integer = false
		if digits() == 0 {
			return Value{}, errAt(ErrSyntax, start, "invalid number")
		}
	}
	if i < len(p.src) && (p.src[i] == 'e' || p.src[i] == 'E') {
		i++
		integer = false
		if i < len(p.src) && (p.src[i] == '+' || p.src[i] == '-') {
			i++
		}
		if digits() == 0 {
			return Value{}, errAt(ErrSyntax, start, "invalid number")
		}
	}
	p.pos = i
	lit := p.src[start:i]
	if integer {
		if lit == "-0" {
			lit = "0"
		}
		if p.strict {
			n, err := strconv.ParseInt(lit, 10, 64)
			if err != nil || n > MaxSafeInteger || n < -MaxSafeInteger {
				return Value{}, errAt(ErrIntegerRange, start, "%s is outside ±(2^53−1)", lit)
			}
		}
		return Value{kind: Number, str: lit}, nil
	}
	if p.strict {
		return Value{}, errAt(ErrFloat, start, "%s has a fraction or an exponent", lit)
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) {
		return Value{}, errAt(ErrIntegerRange, start, "%s does not fit a double", lit)
	}
	return Value{kind: Number, str: formatFloat(f)}, nil
}

// formatFloat writes a non-integer-syntax number of a lenient document.
// Integral values become integers, as in the spec's example (1e10 →
// 10000000000); others take the shortest form that round-trips, switching
// to an exponent outside [1e-4, 1e16) as Python's repr does, which is what
// the servers that wrote such events used.
func formatFloat(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return strconv.FormatInt(int64(f), 10)
	}
	if a := math.Abs(f); a >= 1e-4 && a < 1e16 {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(f, 'e', -1, 64)
}

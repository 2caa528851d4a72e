package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable that overrides a key.
const EnvPrefix = "PARLEY_"

// Load reads the configuration: Defaults, then the YAML file at path (when
// path is not empty), then the environment, then Validate. A missing file
// is an error only when mustExist is true.
func Load(path string, mustExist bool, environ []string) (*Config, error) {
	cfg := Defaults()
	if path != "" {
		data, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := decodeYAML(data, &cfg); err != nil {
				return nil, fmt.Errorf("config file %s: %w", path, err)
			}
		case errors.Is(err, os.ErrNotExist) && !mustExist:
		default:
			return nil, fmt.Errorf("read config: %w", err)
		}
	}
	if err := applyEnv(&cfg, environ); err != nil {
		return nil, err
	}
	cfg.Auth.secretsFromEnv(environ) // per-provider client secrets (auth.go)
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// decodeYAML decodes strictly: an unknown key is a typo the operator wants
// to hear about, not something to ignore.
func decodeYAML(data []byte, cfg *Config) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	return dec.Decode(cfg)
}

// EnvName is the environment variable that overrides the key at path, for
// example EnvName("listen.client") == "PARLEY_LISTEN_CLIENT".
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
}

// Keys lists every configuration key path, in declaration order.
func Keys() []string {
	var keys []string
	walk(reflect.ValueOf(&Config{}).Elem(), "", func(path string, _ reflect.Value) {
		keys = append(keys, path)
	})
	return keys
}

// applyEnv overrides every key whose environment variable is set; it reports
// every unparsable value at once.
func applyEnv(cfg *Config, environ []string) error {
	env := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			env[k] = v
		}
	}
	var problems []string
	walk(reflect.ValueOf(cfg).Elem(), "", func(path string, field reflect.Value) {
		raw, ok := env[EnvName(path)]
		if !ok {
			return
		}
		if err := setFromString(field, raw); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", EnvName(path), err))
		}
	})
	if len(problems) > 0 {
		return &ValidationError{Problems: problems}
	}
	return nil
}

// walk calls visit for every leaf field of a struct with its yaml key path.
func walk(v reflect.Value, prefix string, visit func(path string, field reflect.Value)) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		field := v.Field(i)
		if field.Kind() == reflect.Struct {
			walk(field, path, visit)
			continue
		}
		visit(path, field)
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

func setFromString(field reflect.Value, raw string) error {
	if field.Type() == durationType {
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("not a duration (like 10s): %q", raw)
		}
		field.SetInt(int64(d))
		return nil
	}
	switch field.Kind() {
	case reflect.String:
		field.SetString(raw)
	case reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("not a boolean: %q", raw)
		}
		field.SetBool(b)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer: %q", raw)
		}
		field.SetInt(n)
	case reflect.Map:
		m, err := parseMap(raw)
		if err != nil {
			return err
		}
		field.Set(reflect.ValueOf(m))
	default:
		return fmt.Errorf("unsupported type %s", field.Type())
	}
	return nil
}

// parseMap reads "a=b,c=d" into a map, for map-valued keys.
func parseMap(raw string) (map[string]string, error) {
	m := map[string]string{}
	for _, pair := range strings.Split(raw, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("not a list of key=value pairs: %q", raw)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m, nil
}

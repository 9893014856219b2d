package tokens

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/trellis-mesh/trellis/api/system"
	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
)

// Names of the mesh Secrets behind dataplane tokens, as Kuma names them.
const (
	// DataplaneSigningKeyPrefix starts the name of every Secret holding a
	// dataplane-token signing key: the mesh name, "-" and the key's serial
	// number follow (dataplane-token-signing-key-default-1).
	DataplaneSigningKeyPrefix = "dataplane-token-signing-key-"
	// DataplaneRevocationsPrefix starts the name of the Secret listing a
	// mesh's revoked dataplane-token IDs; the mesh name follows.
	DataplaneRevocationsPrefix = "dataplane-token-revocations-"
)

// DataplaneSigningKeyName is the Secret of a mesh's signing key serial.
func DataplaneSigningKeyName(mesh string, serial int) string {
	return DataplaneSigningKeyPrefix + mesh + "-" + strconv.Itoa(serial)
}

// DataplaneRevocationsName is the Secret listing a mesh's revoked token
// IDs (jti), separated by commas or newlines.
func DataplaneRevocationsName(mesh string) string { return DataplaneRevocationsPrefix + mesh }

// ErrNoDataplaneSigningKey is returned when issuing a token for a mesh
// without a signing key (the mesh does not exist, or its key Secret was
// deleted without a successor).
var ErrNoDataplaneSigningKey = errors.New("the mesh has no dataplane-token signing key")

// dataplaneSerial returns the serial of a signing key Secret of mesh, or
// false when name is not one.
func dataplaneSerial(mesh, name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, DataplaneSigningKeyPrefix+mesh+"-")
	if !ok || rest == "" || rest[0] == '0' || rest[0] == '+' {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n > 0
}

// dataplaneMeshSecrets are what one store read tells about a mesh's
// dataplane tokens: its signing keys by serial and its revoked token IDs.
type dataplaneMeshSecrets struct {
	keys    map[int]*rsa.PrivateKey
	revoked map[string]bool
}

// newest returns the highest serial and its key.
func (m *dataplaneMeshSecrets) newest() (int, *rsa.PrivateKey, bool) {
	best := 0
	for s := range m.keys {
		best = max(best, s)
	}
	return best, m.keys[best], best > 0
}

// dataplaneKeyCache keeps parsed signing keys by Secret (mesh/name) and
// store version, so validating a token costs one store list and no PEM
// parsing while the keys do not change.
type dataplaneKeyCache struct {
	mu sync.Mutex
	m  map[string]dataplaneCachedKey
}

type dataplaneCachedKey struct {
	version string
	key     *rsa.PrivateKey
}

func newDataplaneKeyCache() *dataplaneKeyCache {
	return &dataplaneKeyCache{m: map[string]dataplaneCachedKey{}}
}

// load reads the signing keys and revocations of mesh in one list. A
// Secret that does not hold a usable key is an error naming it: a broken
// key must not silently make tokens signed by it invalid.
func (c *dataplaneKeyCache) load(ctx context.Context, st store.Store, mesh string) (*dataplaneMeshSecrets, error) {
	page, err := st.List(ctx, store.Query{Kind: kinds.Secret, Mesh: mesh, NameContains: "dataplane-token-"})
	if err != nil {
		return nil, fmt.Errorf("reading the dataplane-token Secrets of mesh %q: %w", mesh, err)
	}
	out := &dataplaneMeshSecrets{keys: map[int]*rsa.PrivateKey{}, revoked: map[string]bool{}}
	for _, rec := range page.Items {
		if rec.Mesh != mesh {
			continue
		}
		if rec.Name == DataplaneRevocationsName(mesh) {
			data, err := secretBytes(rec)
			if err != nil {
				return nil, fmt.Errorf("Secret %s/%s: %w", mesh, rec.Name, err)
			}
			for _, id := range parseDataplaneRevocations(data) {
				out.revoked[id] = true
			}
			continue
		}
		serial, ok := dataplaneSerial(mesh, rec.Name)
		if !ok {
			continue
		}
		key, err := c.key(rec)
		if err != nil {
			return nil, fmt.Errorf("Secret %s/%s: %w", mesh, rec.Name, err)
		}
		out.keys[serial] = key
	}
	return out, nil
}

// key returns the parsed key of a signing key record, from the cache when
// the record has not changed.
func (c *dataplaneKeyCache) key(rec *store.Record) (*rsa.PrivateKey, error) {
	id := rec.Mesh + "/" + rec.Name
	c.mu.Lock()
	hit, ok := c.m[id]
	c.mu.Unlock()
	if ok && hit.version == rec.Version && rec.Version != "" {
		return hit.key, nil
	}
	data, err := secretBytes(rec)
	if err != nil {
		return nil, err
	}
	key, err := parseDataplaneSigningKey(data)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.m[id] = dataplaneCachedKey{version: rec.Version, key: key}
	c.mu.Unlock()
	return key, nil
}

// secretBytes decodes the data of a stored Secret.
func secretBytes(rec *store.Record) ([]byte, error) {
	var s system.Secret
	if err := json.Unmarshal(rec.Spec, &s); err != nil {
		return nil, fmt.Errorf("reading the Secret: %w", err)
	}
	return s.Bytes()
}

// parseDataplaneSigningKey reads an RSA private key in PEM: PKCS #1 ("RSA
// PRIVATE KEY", what the control plane generates) or PKCS #8 ("PRIVATE
// KEY", what openssl genpkey writes).
func parseDataplaneSigningKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("the signing key is not PEM")
	}
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the signing key: %w", err)
		}
		return key, nil
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the signing key: %w", err)
		}
		key, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("the signing key is a %T, not an RSA key", k)
		}
		return key, nil
	default:
		return nil, fmt.Errorf("the signing key is a PEM %q block, not an RSA private key", block.Type)
	}
}

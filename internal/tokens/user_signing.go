package tokens

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
)

// userSigningKeyBits is the RSA size of user-token signing keys.
const userSigningKeyBits = 2048

// maxUserRotateAttempts bounds the retries of RotateUserSigningKey when
// another instance rotates at the same moment.
const maxUserRotateAttempts = 5

// UserSigningKeyName is the GlobalSecret holding signing key serial.
func UserSigningKeyName(serial int) string { return UserSigningKeyPrefix + strconv.Itoa(serial) }

// EnsureUserSigningKey creates signing key serial 1 unless a user-token
// signing key exists. Control-plane instances starting together converge:
// the first create wins, the others find it.
func (u *UserTokens) EnsureUserSigningKey(ctx context.Context) error {
	serials, err := u.userSigningSerials(ctx)
	if err != nil {
		return err
	}
	if len(serials) > 0 {
		return nil
	}
	err = u.createUserSigningKey(ctx, 1)
	if errors.Is(err, store.ErrAlreadyExists) {
		return nil
	}
	return err
}

// RotateUserSigningKey creates a signing key with the next serial and
// returns it. New tokens are signed with it; tokens signed with older keys
// stay valid until their key's GlobalSecret is deleted.
func (u *UserTokens) RotateUserSigningKey(ctx context.Context) (int, error) {
	for range maxUserRotateAttempts {
		serials, err := u.userSigningSerials(ctx)
		if err != nil {
			return 0, err
		}
		next := 1
		if len(serials) > 0 {
			next = serials[len(serials)-1] + 1
		}
		err = u.createUserSigningKey(ctx, next)
		if errors.Is(err, store.ErrAlreadyExists) {
			continue // another instance rotated at the same moment
		}
		return next, err
	}
	return 0, fmt.Errorf("rotating the user-token signing key: gave up after %d concurrent rotations", maxUserRotateAttempts)
}

func (u *UserTokens) createUserSigningKey(ctx context.Context, serial int) error {
	key, err := rsa.GenerateKey(rand.Reader, userSigningKeyBits)
	if err != nil {
		return fmt.Errorf("generating a user-token signing key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	spec, err := json.Marshal(map[string]string{"data": base64.StdEncoding.EncodeToString(keyPEM)})
	if err != nil {
		return err
	}
	if err := u.st.Create(ctx, &store.Record{Kind: kinds.GlobalSecret, Name: UserSigningKeyName(serial), Spec: spec}); err != nil {
		return fmt.Errorf("storing user-token signing key %d: %w", serial, err)
	}
	return nil
}

// userSigningSerials lists the serials of the stored signing keys, ascending.
func (u *UserTokens) userSigningSerials(ctx context.Context) ([]int, error) {
	page, err := u.st.List(ctx, store.Query{Kind: kinds.GlobalSecret, NameContains: UserSigningKeyPrefix})
	if err != nil {
		return nil, fmt.Errorf("listing user-token signing keys: %w", err)
	}
	var serials []int
	for _, rec := range page.Items {
		rest, ok := strings.CutPrefix(rec.Name, UserSigningKeyPrefix)
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil && n > 0 && strconv.Itoa(n) == rest {
			serials = append(serials, n)
		}
	}
	// The store orders by name, which puts 10 before 9.
	slices.Sort(serials)
	return serials, nil
}

func (u *UserTokens) newestUserSigningSerial(ctx context.Context) (int, error) {
	serials, err := u.userSigningSerials(ctx)
	if err != nil {
		return 0, err
	}
	if len(serials) == 0 {
		return 0, fmt.Errorf("there is no user-token signing key (GlobalSecret %s1): the control plane creates it at start", UserSigningKeyPrefix)
	}
	return serials[len(serials)-1], nil
}

// userSigningKey reads signing key serial, parsing it only when its stored
// version changed since the last read.
func (u *UserTokens) userSigningKey(ctx context.Context, serial int) (*rsa.PrivateKey, error) {
	rec, err := u.st.Get(ctx, store.Key{Kind: kinds.GlobalSecret, Name: UserSigningKeyName(serial)})
	if err != nil {
		return nil, err
	}
	if key := u.keys.get(serial, rec.Version); key != nil {
		return key, nil
	}
	data, err := userSecretData(rec)
	if err != nil {
		return nil, err
	}
	key, err := parseUserSigningKey(data)
	if err != nil {
		return nil, fmt.Errorf("GlobalSecret %s: %w", rec.Name, err)
	}
	u.keys.put(serial, rec.Version, key)
	return key, nil
}

func parseUserSigningKey(data []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("the signing key is not PEM")
	}
	if key, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return key, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing the signing key: %w", err)
	}
	key, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("the signing key is not an RSA key")
	}
	return key, nil
}

// userSecretData decodes the data of a stored GlobalSecret.
func userSecretData(rec *store.Record) ([]byte, error) {
	var spec struct {
		Data string `json:"data"`
	}
	if err := json.Unmarshal(rec.Spec, &spec); err != nil {
		return nil, fmt.Errorf("GlobalSecret %s: %w", rec.Name, err)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(spec.Data); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("GlobalSecret %s: data is not base64", rec.Name)
}

// userKeyCache keeps parsed signing keys by serial and store version.
type userKeyCache struct {
	mu   sync.Mutex
	keys map[int]userCachedKey
}

type userCachedKey struct {
	version string
	key     *rsa.PrivateKey
}

func newUserKeyCache() *userKeyCache { return &userKeyCache{keys: map[int]userCachedKey{}} }

func (c *userKeyCache) get(serial int, version string) *rsa.PrivateKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.keys[serial]; ok && k.version == version {
		return k.key
	}
	return nil
}

func (c *userKeyCache) put(serial int, version string, key *rsa.PrivateKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys[serial] = userCachedKey{version: version, key: key}
}

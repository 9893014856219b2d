package tokens

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/trellis-mesh/trellis/internal/resource/kinds"
	"github.com/trellis-mesh/trellis/internal/store"
)

// maxUserRevokeAttempts bounds the retries of RevokeUserToken when another
// writer changes the revocation list at the same moment.
const maxUserRevokeAttempts = 5

// RevokeUserToken adds the token ID (its jti claim) to the revocation list
// (GlobalSecret user-token-revocations), which operators may also edit by
// hand: IDs separated by commas or newlines.
func (u *UserTokens) RevokeUserToken(ctx context.Context, id string) error {
	if id == "" || strings.ContainsAny(id, ",\n\r ") {
		return fmt.Errorf("revoking a user token: %q is not a token ID", id)
	}
	key := store.Key{Kind: kinds.GlobalSecret, Name: UserRevocationsName}
	for range maxUserRevokeAttempts {
		rec, err := u.st.Get(ctx, key)
		var ids []string
		switch {
		case errors.Is(err, store.ErrNotFound):
			rec = nil
		case err != nil:
			return fmt.Errorf("reading the user-token revocations: %w", err)
		default:
			data, err := userSecretData(rec)
			if err != nil {
				return err
			}
			ids = parseUserRevocations(data)
		}
		if slices.Contains(ids, id) {
			return nil
		}
		spec, err := json.Marshal(map[string]string{"data": base64.StdEncoding.EncodeToString([]byte(strings.Join(append(ids, id), ",")))})
		if err != nil {
			return err
		}
		if rec == nil {
			err = u.st.Create(ctx, &store.Record{Kind: key.Kind, Name: key.Name, Spec: spec})
		} else {
			next := rec.Clone()
			next.Spec = spec
			err = u.st.Update(ctx, next)
		}
		if errors.Is(err, store.ErrAlreadyExists) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
			continue // someone else changed the list first: read it again
		}
		if err != nil {
			return fmt.Errorf("storing the user-token revocations: %w", err)
		}
		return nil
	}
	return fmt.Errorf("revoking a user token: gave up after %d concurrent changes of %s", maxUserRevokeAttempts, UserRevocationsName)
}

// userTokenRevoked reports whether id is on the revocation list.
func (u *UserTokens) userTokenRevoked(ctx context.Context, id string) (bool, error) {
	rec, err := u.st.Get(ctx, store.Key{Kind: kinds.GlobalSecret, Name: UserRevocationsName})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the user-token revocations: %w", err)
	}
	data, err := userSecretData(rec)
	if err != nil {
		return false, err
	}
	return slices.Contains(parseUserRevocations(data), id), nil
}

// parseUserRevocations splits a revocation list on commas, newlines and
// spaces, dropping empty entries.
func parseUserRevocations(data []byte) []string {
	return strings.FieldsFunc(string(data), func(r rune) bool {
		return r == ',' || r == '\n' || r == '\r' || r == ' ' || r == '\t'
	})
}

package tokens

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// AdminUserTokenFileName is the file in the data dir that holds the
// bootstrap admin token.
const AdminUserTokenFileName = "admin-user-token"

// adminUserTokenValidity is how long a bootstrap admin token lasts.
const adminUserTokenValidity = 10 * 365 * 24 * time.Hour

// EnsureAdminUserTokenFile makes sure path holds a valid admin user token
// (user mesh-system:admin in group mesh-system:admin), readable only by the
// control plane's user: someone on the machine reads it to configure remote
// access. A file whose token no longer validates (its signing key was
// rotated out, the store was replaced) is rewritten. It reports whether it
// wrote a new token.
func (u *UserTokens) EnsureAdminUserTokenFile(ctx context.Context, path string) (bool, error) {
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		claims, err := u.ValidateUserToken(ctx, strings.TrimSpace(string(data)))
		if err == nil && claims.InUserGroup(UserAdminGroup) {
			return false, nil
		}
		if err != nil && !errors.Is(err, ErrInvalidUserToken) {
			return false, err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("reading the admin user token: %w", err)
	}
	token, err := u.IssueUserToken(ctx, UserAdminName, []string{UserAdminGroup}, adminUserTokenValidity)
	if err != nil {
		return false, fmt.Errorf("issuing the admin user token: %w", err)
	}
	if err := writeUserFile(path, []byte(token+"\n")); err != nil {
		return false, fmt.Errorf("writing the admin user token: %w", err)
	}
	return true, nil
}

// writeUserFile writes data to path with mode 0600 through a temporary
// file, so a reader never sees half a token.
func writeUserFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// CreateTemp makes the file 0600 already; say so for the reader.
	if err := os.Chmod(tmp.Name(), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
)

// DataplaneOverviews is the list path of dataplane overviews (Kuma's
// DataplaneOverview: a Dataplane with its DataplaneInsight). Pass it as the
// plural of List and ListAll.
const DataplaneOverviews = "dataplanes+insights"

// DataplaneOverview fetches the overview of one dataplane: its spec under
// "dataplane" and its connection state under "dataplaneInsight".
func (c *Client) DataplaneOverview(ctx context.Context, mesh, name string) (json.RawMessage, error) {
	return c.dataplaneView(ctx, mesh, name, "_overview")
}

// DataplaneConfig fetches the xDS configuration the control plane generates
// for a dataplane, as JSON. A control plane that cannot generate it answers
// 501 (an *APIError).
func (c *Client) DataplaneConfig(ctx context.Context, mesh, name string) (json.RawMessage, error) {
	return c.dataplaneView(ctx, mesh, name, "_config")
}

func (c *Client) dataplaneView(ctx context.Context, mesh, name, view string) (json.RawMessage, error) {
	if mesh == "" || name == "" {
		return nil, errors.New("apiclient: inspecting a dataplane needs its mesh and name")
	}
	path := "/meshes/" + url.PathEscape(mesh) + "/dataplanes/" + url.PathEscape(name) + "/" + view
	var raw json.RawMessage
	if _, err := c.Do(ctx, http.MethodGet, path, nil, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

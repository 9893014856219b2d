package config

import (
	"strings"

	"github.com/trellis-mesh/trellis/api/validate"
)

// Control-plane modes (Kuma's).
const (
	// ModeStandalone: one control plane, no zones.
	ModeStandalone = "standalone"
	// ModeGlobal: the global control plane of a multi-zone deployment; it
	// serves KDS to zones and owns meshes and policies.
	ModeGlobal = "global"
	// ModeZone: a zone control plane; it syncs with the global one over
	// KDS and owns its dataplanes, zone ingresses and egresses.
	ModeZone = "zone"
)

// Multizone configures the global and zone modes.
type Multizone struct {
	Zone   MultizoneZone   `json:"zone"`
	Global MultizoneGlobal `json:"global"`
}

// MultizoneZone configures a zone control plane (mode zone).
type MultizoneZone struct {
	// Name is the zone's name, unique among the global's zones.
	Name string `json:"name"`
	// GlobalAddress is the global's KDS address: grpcs://host:port.
	GlobalAddress string `json:"globalAddress"`
	// GlobalCACertFile is the PEM CA the global's KDS certificate chains
	// to (its generated <dataDir>/certs/kds-server.crt); empty: system roots.
	GlobalCACertFile string `json:"globalCACertFile"`
	// ZoneTokenFile holds the zone token the global issued.
	ZoneTokenFile string `json:"zoneTokenFile"`
}

// MultizoneGlobal configures the global control plane's KDS server (mode
// global); its address is kds.address.
type MultizoneGlobal struct {
	KDS KDSTLS `json:"kds"`
}

// KDSTLS is the KDS server's certificate; empty: generated into
// <dataDir>/certs/kds-server.crt.
type KDSTLS struct {
	TLSCertFile string `json:"tlsCertFile"`
	TLSKeyFile  string `json:"tlsKeyFile"`
}

// multizoneSettings are the keys of the modes, appended to the settings table.
var multizoneSettings = []setting{
	mk("mode", "TRELLIS_MODE", "Control-plane mode: standalone, global (serves KDS on kds.address to zones, owns meshes and policies) or zone (syncs with the global at multizone.zone.globalAddress, owns its dataplanes).",
		strKey(func(c *Config) *string { return &c.Mode })),
	mk("multizone.zone.name", "TRELLIS_MULTIZONE_ZONE", "Name of this zone (mode zone); the global records a Zone resource of that name.",
		strKey(func(c *Config) *string { return &c.Multizone.Zone.Name })),
	mk("multizone.zone.globalAddress", "TRELLIS_MULTIZONE_GLOBAL_ADDRESS", "KDS address of the global control plane (mode zone), e.g. grpcs://global.example:5685.",
		strKey(func(c *Config) *string { return &c.Multizone.Zone.GlobalAddress })),
	mk("multizone.zone.globalCACertFile", "TRELLIS_MULTIZONE_GLOBAL_CA_CERT_FILE", "PEM CA the global's KDS certificate must chain to (the global's <dataDir>/certs/kds-server.crt when generated). Empty: the system roots.",
		strKey(func(c *Config) *string { return &c.Multizone.Zone.GlobalCACertFile })),
	mk("multizone.zone.zoneTokenFile", "TRELLIS_MULTIZONE_ZONE_TOKEN_FILE", "File holding this zone's token, issued on the global by `trellisctl generate zone-token --zone <name>`; read on every connection.",
		strKey(func(c *Config) *string { return &c.Multizone.Zone.ZoneTokenFile })),
	mk("multizone.global.kds.tlsCertFile", "TRELLIS_MULTIZONE_GLOBAL_KDS_TLS_CERT_FILE", "PEM certificate of the KDS server (mode global). Empty: generated on first start as <dataDir>/certs/kds-server.crt (give that file to zones as multizone.zone.globalCACertFile).",
		strKey(func(c *Config) *string { return &c.Multizone.Global.KDS.TLSCertFile })),
	mk("multizone.global.kds.tlsKeyFile", "TRELLIS_MULTIZONE_GLOBAL_KDS_TLS_KEY_FILE", "PEM key of the KDS server certificate; set with tlsCertFile.",
		strKey(func(c *Config) *string { return &c.Multizone.Global.KDS.TLSKeyFile })),
}

func init() { settings = append(settings, multizoneSettings...) }

// validateMultizone checks the mode and what it requires.
func (c *Config) validateMultizone(bad func(key, format string, args ...any)) {
	switch c.Mode {
	case ModeStandalone, ModeGlobal:
	case ModeZone:
		if c.Multizone.Zone.Name == "" {
			bad("multizone.zone.name", "must name the zone when mode is zone")
		} else if reason := validate.Name(c.Multizone.Zone.Name); reason != "" {
			bad("multizone.zone.name", "%q: %s", c.Multizone.Zone.Name, reason)
		}
		addr := c.Multizone.Zone.GlobalAddress
		switch {
		case addr == "":
			bad("multizone.zone.globalAddress", "must be set when mode is zone, e.g. grpcs://global.example:5685")
		case strings.Contains(addr, "://") && !strings.HasPrefix(addr, "grpcs://"):
			bad("multizone.zone.globalAddress", "%q: the scheme must be grpcs (KDS runs over TLS)", addr)
		}
	default:
		bad("mode", "unknown value %q: must be one of standalone, global, zone", c.Mode)
	}
	if (c.Multizone.Global.KDS.TLSCertFile == "") != (c.Multizone.Global.KDS.TLSKeyFile == "") {
		bad("multizone.global.kds.tlsCertFile", "tlsCertFile and tlsKeyFile must be set together")
	}
}

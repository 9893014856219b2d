package install

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// Names of the objects the install creates (one control plane per cluster:
// the cluster-scoped ones are fixed). trellis-cp's Kubernetes defaults use
// the same (internal/config/kubernetes.go).
const (
	DefaultNamespace   = "trellis-system"
	ServiceName        = "trellis-control-plane"
	ServiceAccountName = "trellis-control-plane"
	ClusterRoleName    = "trellis-control-plane"
	RoleName           = "trellis-control-plane"
	DeploymentName     = "trellis-control-plane"
	ConfigMapName      = "trellis-control-plane-config"
	TLSSecretName      = "trellis-tls-cert"
	PDBName            = "trellis-control-plane"
	ValidatingWebhook  = "trellis-validating-webhook-configuration"
	MutatingWebhook    = "trellis-admission-mutating-webhook-configuration"
	// ValidatePath and InjectPath are the webhook server's paths.
	ValidatePath = "/validate-kuma-io-v1alpha1"
	InjectPath   = "/inject-sidecar"
	// Ports of trellis-cp in the Pod; the Service maps 443 to the webhook.
	PortAPIHTTP  = 5681
	PortAPIHTTPS = 5682
	PortDPServer = 5678
	PortWebhook  = 5443
	// Paths in the control-plane container.
	ConfigDir  = "/etc/trellis"
	TLSDir     = "/var/run/secrets/trellis/tls"
	DataDir    = "/var/lib/trellis"
	runAsUser  = 65532
	leaseGroup = "coordination.k8s.io"
)

type obj = map[string]any
type list = []any

func labels() obj {
	return obj{
		"app.kubernetes.io/name":      "trellis-control-plane",
		"app.kubernetes.io/part-of":   "trellis",
		"app.kubernetes.io/component": "control-plane",
	}
}

func selectorLabels() obj { return obj{"app.kubernetes.io/name": "trellis-control-plane"} }

func meta(name, ns string) obj {
	m := obj{"name": name, "labels": labels()}
	if ns != "" {
		m["namespace"] = ns
	}
	return m
}

func object(apiVersion, kind string, metadata obj, fields obj) obj {
	o := obj{"apiVersion": apiVersion, "kind": kind, "metadata": metadata}
	for k, v := range fields {
		o[k] = v
	}
	return o
}

func imageRef(img Image, appVersion string) string {
	tag := img.Tag
	if tag == "" {
		tag = appVersion
	}
	return img.Repository + ":" + tag
}

func namespaceObj(ns string) obj {
	return object("v1", "Namespace", obj{"name": ns, "labels": labels()}, nil)
}

func serviceAccount(ns string) obj {
	return object("v1", "ServiceAccount", meta(ServiceAccountName, ns), nil)
}

func tlsSecret(ns string, t TLSValues) obj {
	b64 := base64.StdEncoding.EncodeToString
	return object("v1", "Secret", meta(TLSSecretName, ns), obj{
		"type": "kubernetes.io/tls",
		"data": obj{"ca.crt": b64([]byte(t.CACert)), "tls.crt": b64([]byte(t.Cert)), "tls.key": b64([]byte(t.Key))},
	})
}

// configYAML is trellis-cp's config file (see deploy/trellis-cp.defaults.yaml).
func configYAML(ns string, v Values, appVersion string) string {
	svc := ServiceName + "." + ns + ".svc"
	lines := []string{
		"dataDir: " + DataDir,
		"apiServer:",
		"  http:",
		fmt.Sprintf("    address: 0.0.0.0:%d", PortAPIHTTP),
		"dpServer:",
		fmt.Sprintf("  advertisedAddress: %s:%d", svc, PortDPServer),
		"  tlsCertFile: " + TLSDir + "/tls.crt",
		"  tlsKeyFile: " + TLSDir + "/tls.key",
		"log:",
		"  level: " + v.ControlPlane.LogLevel,
		"  format: json",
		"kubernetes:",
		"  webhookServer:",
		fmt.Sprintf("    address: 0.0.0.0:%d", PortWebhook),
		"    tlsCertFile: " + TLSDir + "/tls.crt",
		"    tlsKeyFile: " + TLSDir + "/tls.key",
		"  injector:",
		"    image: " + imageRef(v.DataPlane.Image, appVersion),
		"    initImage: " + imageRef(v.DataPlane.InitImage, appVersion),
		fmt.Sprintf("    cpAddress: https://%s:%d", svc, PortDPServer),
		"    caCertFile: " + TLSDir + "/ca.crt",
	}
	return strings.Join(lines, "\n") + "\n"
}

func configMap(ns string, v Values, appVersion string) obj {
	return object("v1", "ConfigMap", meta(ConfigMapName, ns), obj{
		"data": obj{"config.yaml": configYAML(ns, v, appVersion)},
	})
}

func rule(groups, resources, verbs []string) obj {
	return obj{"apiGroups": strs(groups), "resources": strs(resources), "verbs": strs(verbs)}
}

func strs(s []string) list {
	l := make(list, len(s))
	for i, x := range s {
		l[i] = x
	}
	return l
}

var allVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete"}

// clusterRole: what the control plane reads and writes across namespaces.
func clusterRole() obj {
	return object("rbac.authorization.k8s.io/v1", "ClusterRole", meta(ClusterRoleName, ""), obj{"rules": list{
		// Pods and Services become Dataplanes; namespaces carry the injection label.
		rule([]string{""}, []string{"namespaces", "pods", "services"}, []string{"get", "list", "watch"}),
		// Dataplanes are owned by their Pod (blockOwnerDeletion needs this).
		rule([]string{""}, []string{"pods/finalizers"}, []string{"update"}),
		rule([]string{""}, []string{"events"}, []string{"create", "patch"}),
		// The store: every kind of the kuma.io group, and policy status.
		rule([]string{"kuma.io"}, []string{"*"}, allVerbs),
		rule([]string{"kuma.io"}, []string{"*/status"}, []string{"get", "update", "patch"}),
	}})
}

func clusterRoleBinding(ns string) obj {
	return object("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", meta(ClusterRoleName, ""), obj{
		"roleRef":  obj{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ClusterRoleName},
		"subjects": list{obj{"kind": "ServiceAccount", "name": ServiceAccountName, "namespace": ns}},
	})
}

// role: the leader-election Lease, and the Secrets (Kuma's Secret kinds)
// and ConfigMaps (kinds without a CRD) the Kubernetes store keeps in the
// system namespace.
func role(ns string) obj {
	return object("rbac.authorization.k8s.io/v1", "Role", meta(RoleName, ns), obj{"rules": list{
		rule([]string{leaseGroup}, []string{"leases"}, []string{"get", "create", "update"}),
		rule([]string{""}, []string{"configmaps", "secrets"}, allVerbs),
	}})
}

func roleBinding(ns string) obj {
	return object("rbac.authorization.k8s.io/v1", "RoleBinding", meta(RoleName, ns), obj{
		"roleRef":  obj{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": RoleName},
		"subjects": list{obj{"kind": "ServiceAccount", "name": ServiceAccountName, "namespace": ns}},
	})
}

func port(name string, p, target any) obj {
	return obj{"name": name, "port": p, "targetPort": target, "protocol": "TCP"}
}

func service(ns string) obj {
	return object("v1", "Service", meta(ServiceName, ns), obj{"spec": obj{
		"type":     "ClusterIP",
		"selector": selectorLabels(),
		"ports": list{
			port("http-api", PortAPIHTTP, "http-api"),
			port("https-api", PortAPIHTTPS, "https-api"),
			port("dp-server", PortDPServer, "dp-server"),
			port("webhook", 443, "webhook"),
		},
	}})
}

func podDisruptionBudget(ns string) obj {
	return object("policy/v1", "PodDisruptionBudget", meta(PDBName, ns), obj{"spec": obj{
		"maxUnavailable": 1,
		"selector":       obj{"matchLabels": selectorLabels()},
	}})
}

func webhookClient(ns, path string, caBundle string) obj {
	return obj{
		"caBundle": base64.StdEncoding.EncodeToString([]byte(caBundle)),
		"service":  obj{"name": ServiceName, "namespace": ns, "path": path, "port": 443},
	}
}

func validatingWebhook(ns string, t TLSValues) obj {
	return object("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", meta(ValidatingWebhook, ""), obj{
		"webhooks": list{obj{
			"name":                    "validator.trellis.kuma.io",
			"admissionReviewVersions": list{"v1"},
			"sideEffects":             "None",
			"failurePolicy":           "Fail",
			"timeoutSeconds":          10,
			"clientConfig":            webhookClient(ns, ValidatePath, t.CACert),
			"rules": list{obj{
				"apiGroups": list{"kuma.io"}, "apiVersions": list{"v1alpha1"},
				"operations": list{"CREATE", "UPDATE"}, "resources": list{"*"}, "scope": "*",
			}},
		}},
	})
}

// injectionOn are the label values that switch injection on
// (internal/k8s/annotations.Switch, lowercase).
var injectionOn = list{"enabled", "true", "yes"}

func selector(op string) obj {
	return obj{"matchExpressions": list{obj{"key": "kuma.io/sidecar-injection", "operator": op, "values": injectionOn}}}
}

// mutatingWebhook sends Pod creations to the injector: every Pod of a
// namespace labelled kuma.io/sidecar-injection=enabled (a Pod's own label
// or annotation may still opt out), and, elsewhere, Pods labelled so
// themselves.
func mutatingWebhook(ns string, v Values) obj {
	hook := func(name string, extra obj) obj {
		h := obj{
			"name":                    name,
			"admissionReviewVersions": list{"v1"},
			"sideEffects":             "None",
			"failurePolicy":           v.ControlPlane.InjectorFailurePolicy,
			"reinvocationPolicy":      "Never",
			"timeoutSeconds":          10,
			"clientConfig":            webhookClient(ns, InjectPath, v.ControlPlane.TLS.CACert),
			"rules": list{obj{
				"apiGroups": list{""}, "apiVersions": list{"v1"},
				"operations": list{"CREATE"}, "resources": list{"pods"}, "scope": "Namespaced",
			}},
		}
		for k, x := range extra {
			h[k] = x
		}
		return h
	}
	return object("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", meta(MutatingWebhook, ""), obj{
		"webhooks": list{
			hook("namespace-injector.trellis.kuma.io", obj{"namespaceSelector": selector("In")}),
			hook("pod-injector.trellis.kuma.io", obj{"namespaceSelector": selector("NotIn"), "objectSelector": selector("In")}),
		},
	})
}

package install

func containerPort(name string, p int) obj {
	return obj{"name": name, "containerPort": p, "protocol": "TCP"}
}

func probe(path string, initialDelay, period, failures int) obj {
	return obj{
		"httpGet":             obj{"path": path, "port": "http-api"},
		"initialDelaySeconds": initialDelay,
		"periodSeconds":       period,
		"timeoutSeconds":      2,
		"failureThreshold":    failures,
	}
}

func quantities(m map[string]any) obj {
	o := obj{}
	for k, v := range m {
		o[k] = v
	}
	return o
}

func resources(r Resources) obj {
	o := obj{}
	if len(r.Requests) > 0 {
		o["requests"] = quantities(r.Requests)
	}
	if len(r.Limits) > 0 {
		o["limits"] = quantities(r.Limits)
	}
	return o
}

func mount(name, path string) obj {
	return obj{"name": name, "mountPath": path, "readOnly": true}
}

// deployment runs trellis-cp as a non-root user on a read-only root file
// system: its config and certificate come from volumes, what it writes
// (the HTTPS API certificate, tokens) goes to an emptyDir.
func deployment(ns string, v Values, appVersion string) obj {
	cp := v.ControlPlane
	container := obj{
		"name":            "control-plane",
		"image":           imageRef(cp.Image, appVersion),
		"imagePullPolicy": cp.Image.PullPolicy,
		"args":            list{"run", "--config", ConfigDir + "/config.yaml"},
		"env": list{
			obj{"name": "TRELLIS_ENVIRONMENT", "value": "kubernetes"},
			obj{"name": "TRELLIS_K8S_SYSTEM_NAMESPACE", "valueFrom": obj{"fieldRef": obj{"fieldPath": "metadata.namespace"}}},
		},
		"ports": list{
			containerPort("http-api", PortAPIHTTP),
			containerPort("https-api", PortAPIHTTPS),
			containerPort("dp-server", PortDPServer),
			containerPort("webhook", PortWebhook),
		},
		"readinessProbe": probe("/ready", 3, 5, 3),
		"livenessProbe":  probe("/healthy", 10, 10, 6),
		"resources":      resources(cp.Resources),
		"securityContext": obj{
			"allowPrivilegeEscalation": false,
			"readOnlyRootFilesystem":   true,
			"runAsNonRoot":             true,
			"runAsUser":                runAsUser,
			"runAsGroup":               runAsUser,
			"capabilities":             obj{"drop": list{"ALL"}},
		},
		"volumeMounts": list{
			mount("config", ConfigDir),
			mount("tls", TLSDir),
			obj{"name": "data", "mountPath": DataDir},
			obj{"name": "tmp", "mountPath": "/tmp"},
		},
	}
	return object("apps/v1", "Deployment", meta(DeploymentName, ns), obj{"spec": obj{
		"replicas": cp.Replicas,
		"selector": obj{"matchLabels": selectorLabels()},
		"strategy": obj{"type": "RollingUpdate", "rollingUpdate": obj{"maxSurge": 1, "maxUnavailable": 0}},
		"template": obj{
			"metadata": obj{"labels": labels()},
			"spec": obj{
				"serviceAccountName":            ServiceAccountName,
				"automountServiceAccountToken":  true,
				"terminationGracePeriodSeconds": 30,
				"securityContext": obj{
					"runAsNonRoot":   true,
					"fsGroup":        runAsUser,
					"seccompProfile": obj{"type": "RuntimeDefault"},
				},
				"containers": list{container},
				"volumes": list{
					obj{"name": "config", "configMap": obj{"name": ConfigMapName}},
					obj{"name": "tls", "secret": obj{"secretName": TLSSecretName}},
					obj{"name": "data", "emptyDir": obj{}},
					obj{"name": "tmp", "emptyDir": obj{}},
				},
			},
		},
	}})
}

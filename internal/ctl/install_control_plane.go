package ctl

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/trellis-mesh/trellis/internal/k8s/install"
	"github.com/trellis-mesh/trellis/internal/version"
)

// cpInstallFlags are the flags of `install control-plane`.
type cpInstallFlags struct {
	namespace               string
	image                   string
	replicas                int
	sets                    []string
	caFile, certFile, keyFl string
}

func (r *root) installControlPlaneCmd() *cobra.Command {
	var f cpInstallFlags
	cmd := &cobra.Command{
		Use:   "control-plane",
		Short: "Print the Kubernetes manifests of a Trellis control plane (pipe them to kubectl apply -f -)",
		Long: "Prints, as YAML documents, everything a control plane on Kubernetes needs: the Namespace, the\n" +
			"kuma.io/v1alpha1 CRDs, the ServiceAccount and RBAC (a ClusterRole for Pods, Services and the kuma.io\n" +
			"resources; a Role for the leader-election Lease and the namespace's Secrets), a ConfigMap with\n" +
			"trellis-cp's config, the Deployment (TRELLIS_ENVIRONMENT=kubernetes), the Service, a\n" +
			"PodDisruptionBudget when --replicas > 1, and the validating and mutating webhook configurations.\n\n" +
			"A CA and a serving certificate for the Service (trellis-control-plane.<namespace>.svc) are\n" +
			"generated on every run: the Secret trellis-tls-cert carries them and the webhooks' caBundle is the\n" +
			"CA. Pass --tls-ca-cert-file, --tls-cert-file and --tls-key-file to use your own.\n\n" +
			"--set takes the keys of the Helm chart's values.yaml (deploy/helm/trellis), which renders the same\n" +
			"objects.\n\n" +
			"Example:\n  trellisctl install control-plane --replicas 2 | kubectl apply -f -",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := f.options(cmd)
			if err != nil {
				return err
			}
			out, err := install.ControlPlane(opts)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.namespace, "namespace", install.DefaultNamespace, "namespace of the control plane")
	fl.StringVar(&f.image, "image", "", "control plane image, repository[:tag] (default trellis/trellis-cp:"+imageTag()+")")
	fl.IntVar(&f.replicas, "replicas", 0, "control plane replicas (default 1; above 1 adds a PodDisruptionBudget)")
	fl.StringArrayVar(&f.sets, "set", nil, "a chart value, key.path=value (repeatable), e.g. controlPlane.logLevel=debug")
	fl.StringVar(&f.caFile, "tls-ca-cert-file", "", "PEM CA of the serving certificate (the webhooks' caBundle); with --tls-cert-file and --tls-key-file")
	fl.StringVar(&f.certFile, "tls-cert-file", "", "PEM serving certificate of the webhook and DP servers, valid for trellis-control-plane.<namespace>.svc")
	fl.StringVar(&f.keyFl, "tls-key-file", "", "PEM key of --tls-cert-file")
	return cmd
}

func (r *root) installCRDsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "crds",
		Short: "Print the kuma.io/v1alpha1 CustomResourceDefinitions (pipe them to kubectl apply -f -)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := install.CRDs()
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
}

// imageTag is the default tag of the images: this trellisctl's version.
func imageTag() string { return version.Version }

func (f *cpInstallFlags) options(cmd *cobra.Command) (install.Options, error) {
	values, err := install.DefaultValues()
	if err != nil {
		return install.Options{}, err
	}
	for _, s := range f.sets {
		if err := install.Set(values, s); err != nil {
			return install.Options{}, err
		}
	}
	if f.image != "" {
		repo, tag := splitImage(f.image)
		if repo == "" {
			return install.Options{}, fmt.Errorf("%w: --image %q: want repository[:tag]", install.ErrInvalidValue, f.image)
		}
		if err := install.SetValue(values, "controlPlane.image.repository", repo); err != nil {
			return install.Options{}, err
		}
		if err := install.SetValue(values, "controlPlane.image.tag", tag); err != nil {
			return install.Options{}, err
		}
	}
	if cmd.Flags().Changed("replicas") {
		if f.replicas < 1 {
			return install.Options{}, fmt.Errorf("%w: --replicas %d: must be at least 1", install.ErrInvalidValue, f.replicas)
		}
		if err := install.SetValue(values, "controlPlane.replicas", f.replicas); err != nil {
			return install.Options{}, err
		}
	}
	if err := f.loadTLS(values); err != nil {
		return install.Options{}, err
	}
	return install.Options{Namespace: f.namespace, Values: values, AppVersion: imageTag(), CreateNamespace: true}, nil
}

// loadTLS puts the PEM files of the --tls-* flags into the values.
func (f *cpInstallFlags) loadTLS(values map[string]any) error {
	files := []struct{ flag, path, key string }{
		{"--tls-ca-cert-file", f.caFile, "caCert"}, {"--tls-cert-file", f.certFile, "cert"}, {"--tls-key-file", f.keyFl, "key"},
	}
	n := 0
	for _, x := range files {
		if x.path != "" {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	if n != len(files) {
		return fmt.Errorf("%w: --tls-ca-cert-file, --tls-cert-file and --tls-key-file go together", install.ErrInvalidValue)
	}
	for _, x := range files {
		data, err := os.ReadFile(x.path)
		if err != nil {
			return fmt.Errorf("%s: %w", x.flag, err)
		}
		if !strings.Contains(string(data), "-----BEGIN ") {
			return fmt.Errorf("%w: %s %s: not a PEM file", install.ErrInvalidValue, x.flag, x.path)
		}
		if err := install.SetValue(values, "controlPlane.tls."+x.key, string(data)); err != nil {
			return err
		}
	}
	return nil
}

// splitImage splits repository[:tag]; a colon in the registry's host:port
// is not a tag.
func splitImage(s string) (repo, tag string) {
	i := strings.LastIndex(s, ":")
	if i < 0 || strings.Contains(s[i:], "/") {
		return s, imageTag()
	}
	return s[:i], s[i+1:]
}

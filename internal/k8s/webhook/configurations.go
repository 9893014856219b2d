package webhook

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/trellis-mesh/trellis/internal/k8s/annotations"
)

// Names of the webhooks (as the install manifests name them).
const (
	ValidatorName = "validator.trellis.kuma.io"
	InjectorName  = "injector.trellis.kuma.io"
)

// Configurations returns the webhook configurations that point the API
// server at a control plane reachable at baseURL ("https://host:port") with
// a certificate signed by caBundle: for a control plane outside the
// cluster (tests, development). In a cluster, the install manifests point
// at the control plane's Service instead.
func Configurations(name, baseURL string, caBundle []byte) (*admissionregistrationv1.ValidatingWebhookConfiguration, *admissionregistrationv1.MutatingWebhookConfiguration) {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(10)
	vURL, mURL := baseURL+ValidatePath, baseURL+InjectPath
	v := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:                    ValidatorName,
			ClientConfig:            admissionregistrationv1.WebhookClientConfig{URL: &vURL, CABundle: caBundle},
			Rules:                   []admissionregistrationv1.RuleWithOperations{rule([]string{"kuma.io"}, []string{"*"}, admissionregistrationv1.Create, admissionregistrationv1.Update)},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          &timeout,
		}},
	}
	m := &admissionregistrationv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{
			Name:         InjectorName,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &mURL, CABundle: caBundle},
			Rules:        []admissionregistrationv1.RuleWithOperations{rule([]string{""}, []string{"pods"}, admissionregistrationv1.Create)},
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
				Key: annotations.SidecarInjection, Operator: metav1.LabelSelectorOpIn, Values: []string{"enabled", "true"}}}},
			FailurePolicy:           &fail,
			SideEffects:             &none,
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          &timeout,
		}},
	}
	return v, m
}

func rule(groups, resources []string, ops ...admissionregistrationv1.OperationType) admissionregistrationv1.RuleWithOperations {
	return admissionregistrationv1.RuleWithOperations{Operations: ops, Rule: admissionregistrationv1.Rule{
		APIGroups: groups, APIVersions: []string{"*"}, Resources: resources}}
}

{{/* Labels of every object. */}}
{{- define "trellis.labels" -}}
app.kubernetes.io/component: control-plane
app.kubernetes.io/name: trellis-control-plane
app.kubernetes.io/part-of: trellis
{{- end }}

{{/* The Deployment's selector. */}}
{{- define "trellis.selectorLabels" -}}
app.kubernetes.io/name: trellis-control-plane
{{- end }}

{{/* An image reference from {repository, tag}; an empty tag is the chart's appVersion. Call with (list $image $). */}}
{{- define "trellis.image" -}}
{{- $img := index . 0 -}}
{{- $root := index . 1 -}}
{{- printf "%s:%s" $img.repository (default $root.Chart.AppVersion $img.tag) -}}
{{- end }}

{{/* The control plane Service's in-cluster host name. */}}
{{- define "trellis.serviceHost" -}}
{{- printf "trellis-control-plane.%s.svc" .Release.Namespace -}}
{{- end }}

package resources

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
	"github.com/crmops/crm-operator/internal/crm"
)

// The mail catcher of a non-production environment: Mailpit
// (axllent/mailpit@408b30d: Dockerfile ENTRYPOINT /mailpit, EXPOSE 1025
// 8025; cmd/root.go reads MP_SMTP_BIND_ADDR, MP_UI_BIND_ADDR, MP_WEBROOT,
// MP_UI_AUTH, MP_MAX_MESSAGES, MP_SMTP_AUTH_ACCEPT_ANY,
// MP_SMTP_AUTH_ALLOW_INSECURE; server/server.go answers <webroot>livez and
// readyz). It keeps the messages in a temporary file (/tmp).
const (
	ComponentMail  = "mail"
	MailRepository = "docker.io/axllent/mailpit"
	MailVersion    = "v1.30.5"
	MailSMTPPort   = int32(1025)
	MailWebPort    = int32(8025)
	// MailPath is where the catcher's web UI is served on the environment's host.
	MailPath = "/mail"
	// MailUser signs in to the catcher's web UI with the admin password.
	MailUser = "admin"
	mailUID  = int64(65532)
)

// MailReader is the portal's access to the mail catchers: its pods'
// namespace (the catcher's NetworkPolicy admits them to the web port) and
// an htpasswd line (user and bcrypt hash, never a password) the catcher's
// web API accepts besides the environment's admin.
type MailReader struct {
	Namespace string
	Htpasswd  string
}

// PortalPodLabels select the portal's pods (the chart's portal Deployment).
var PortalPodLabels = map[string]string{"app.kubernetes.io/name": "crm-portal"}

// MailName names the catcher's Deployment and Service.
func MailName(env string) string { return env + "-mail" }

// CatchesMail reports whether the environment's mail goes to its catcher:
// every environment but production, unless it names its own server and the
// project allows real mail outside production.
func CatchesMail(in *EnvironmentInput) bool {
	return in.Env.Spec.Stage != crmv1alpha1.StageProduction && realSMTP(in) == nil
}

// realSMTP is the real server the environment sends through, nil for none.
func realSMTP(in *EnvironmentInput) *crmv1alpha1.SMTPServer {
	policy := in.Project.Spec.Mail
	var own *crmv1alpha1.SMTPServer
	if m := in.Env.Spec.Mail; m != nil {
		own = m.SMTP
	}
	if in.Env.Spec.Stage == crmv1alpha1.StageProduction {
		if own != nil {
			return own
		}
		if policy != nil {
			return policy.SMTP
		}
		return nil
	}
	// Outside production only with the project's explicit allowance; the
	// admission webhook refuses the Environment otherwise, and this holds
	// even if the allowance is withdrawn later.
	if own != nil && policy != nil && policy.AllowRealMailOutsideProduction {
		return own
	}
	return nil
}

// MailOf is where the environment's application sends e-mail; an empty
// Host leaves the product's own settings alone (production without mail.smtp).
func MailOf(in *EnvironmentInput) crm.Mail {
	if CatchesMail(in) {
		return crm.Mail{Host: MailName(in.Env.Name), Port: MailSMTPPort, From: fmt.Sprintf("crm@%s.%s.invalid", in.Env.Name, in.Project.Name)}
	}
	s := realSMTP(in)
	if s == nil {
		return crm.Mail{}
	}
	m := crm.Mail{Host: s.Host, Port: s.Port, From: s.From, TLS: s.TLS == nil || *s.TLS}
	if m.Port == 0 {
		m.Port = 587
	}
	if s.CredentialsSecretName != "" {
		ref := func(key string) *corev1.SecretKeySelector {
			return &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: s.CredentialsSecretName}, Key: key}
		}
		m.Username, m.Password = ref("username"), ref("password")
	}
	return m
}

// MailURL is where the project's people read the caught mail: the
// environment's host at /mail/, else the catcher's Service (kubectl crm mail
// port-forwards to it).
func MailURL(in *EnvironmentInput) string {
	if !CatchesMail(in) {
		return ""
	}
	if host := IngressHost(in); host != "" {
		scheme := "http"
		if in.Env.Spec.Ingress != nil && in.Env.Spec.Ingress.TLSSecretName != "" {
			scheme = "https"
		}
		return fmt.Sprintf("%s://%s%s/", scheme, host, MailPath)
	}
	return fmt.Sprintf("http://%s.%s.svc:%d%s/", MailName(in.Env.Name), in.Env.Namespace, MailWebPort, MailPath)
}

func mailDeployment(in *EnvironmentInput, hib bool) *appsv1.Deployment {
	labels := componentLabels(in, ComponentMail)
	vols, mounts := scratch([]string{"/tmp"})
	probe := func(path string) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: MailPath + "/" + path, Port: intstr.FromInt32(MailWebPort)}}, PeriodSeconds: 10}
	}
	return &appsv1.Deployment{
		TypeMeta:   typeMeta("apps/v1", "Deployment"),
		ObjectMeta: meta(MailName(in.Env.Name), in.Env.Namespace, labels),
		Spec: appsv1.DeploymentSpec{
			Replicas: scaled(1, hib),
			Selector: &metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentMail)},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext:              podSecurity(mailUID, mailUID, false),
					Affinity:                     regionAffinity(in.Project),
					Tolerations:                  in.Tolerations,
					AutomountServiceAccountToken: ptr.To(false),
					Volumes:                      vols,
					Containers: []corev1.Container{{
						Name:  "mailpit",
						Image: in.Images.Resolve(ImageMail, MailRepository, MailVersion),
						Env: []corev1.EnvVar{
							{Name: "MP_SMTP_BIND_ADDR", Value: fmt.Sprintf("0.0.0.0:%d", MailSMTPPort)},
							{Name: "MP_UI_BIND_ADDR", Value: fmt.Sprintf("0.0.0.0:%d", MailWebPort)},
							{Name: "MP_WEBROOT", Value: MailPath + "/"},
							{Name: "MP_MAX_MESSAGES", Value: "5000"},
							// Products configured with a login keep working against the catcher.
							{Name: "MP_SMTP_AUTH_ACCEPT_ANY", Value: "true"},
							{Name: "MP_SMTP_AUTH_ALLOW_INSECURE", Value: "true"},
							{Name: "MAIL_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
								LocalObjectReference: corev1.LocalObjectReference{Name: CredentialsName(in.Env.Name)}, Key: crm.SecretMailPassword,
							}}},
							{Name: "MP_UI_AUTH", Value: mailUIAuth(in)},
						},
						Ports: []corev1.ContainerPort{
							{Name: "smtp", ContainerPort: MailSMTPPort, Protocol: corev1.ProtocolTCP},
							{Name: "http", ContainerPort: MailWebPort, Protocol: corev1.ProtocolTCP},
						},
						VolumeMounts:    mounts,
						Resources:       agentResources(),
						SecurityContext: containerSecurity(true),
						ReadinessProbe:  probe("readyz"),
						LivenessProbe:   probe("livez"),
					}},
				},
			},
		},
	}
}

// mailUIAuth is the catcher's MP_UI_AUTH: htpasswd lines separated by
// spaces (axllent/mailpit@408b30d internal/auth/auth.go SetUIAuth), the
// catcher's own password from the Secret (mail-password, not the CRM
// admin's), the portal's as a bcrypt hash.
func mailUIAuth(in *EnvironmentInput) string {
	auth := MailUser + ":$(MAIL_PASSWORD)"
	if r := in.MailReader; r != nil && r.Htpasswd != "" {
		// $$ keeps the kubelet from reading "$(" in a hash as a reference.
		auth += " " + strings.ReplaceAll(r.Htpasswd, "$", "$$")
	}
	return auth
}

// mailPolicy: the environment's application pods deliver on the SMTP port,
// the ingress controller (and the portal, when there is one) reaches the
// web UI; the catcher reaches nothing.
func mailPolicy(in *EnvironmentInput) *networkingv1.NetworkPolicy {
	np := policy(in, MailName(in.Env.Name), ComponentMail, metav1.LabelSelector{MatchLabels: selector(in.Env.Name, ComponentMail)})
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{
		{From: []networkingv1.NetworkPolicyPeer{{PodSelector: appTier(in)}}, Ports: []networkingv1.NetworkPolicyPort{tcp(MailSMTPPort)}},
		{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{corev1.LabelMetadataName: in.IngressNamespace},
		}}}, Ports: []networkingv1.NetworkPolicyPort{tcp(MailWebPort)}},
	}
	if r := in.MailReader; r != nil && r.Namespace != "" {
		np.Spec.Ingress = append(np.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: r.Namespace}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: PortalPodLabels},
		}}, Ports: []networkingv1.NetworkPolicyPort{tcp(MailWebPort)}})
	}
	return np
}

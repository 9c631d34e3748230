package crm

import (
	"testing"

	crmv1alpha1 "github.com/crmops/crm-operator/api/v1alpha1"
)

func TestPersonalFilesAreTheUploadsNotTheCode(t *testing.T) {
	for _, tc := range []struct {
		product  crmv1alpha1.ProductName
		path     string
		personal bool
	}{
		{crmv1alpha1.ProductEspoCRM, "data/upload/6571a3f0e1b2c4d5e", true},
		{crmv1alpha1.ProductEspoCRM, "data/upload/thumbs/6571a3f0e1b2c4d5e_small", true},
		{crmv1alpha1.ProductEspoCRM, "data/upload", true},
		{crmv1alpha1.ProductEspoCRM, "data/logs/espo-2026-12-07.log", true},
		{crmv1alpha1.ProductEspoCRM, "data/upload/extensions/sales-pack/manifest.json", false},
		{crmv1alpha1.ProductEspoCRM, "data/upload/upgrades/10.0.3.zip", false},
		{crmv1alpha1.ProductEspoCRM, "data/config-internal.php", false},
		{crmv1alpha1.ProductEspoCRM, "custom/Espo/Custom/Resources/metadata/entityDefs/Lead.json", false},
		{crmv1alpha1.ProductEspoCRM, "client-custom/src/views/lead.js", false},
		{crmv1alpha1.ProductEspoCRM, "data/uploads-not-really/x", false},
		{crmv1alpha1.ProductSuiteCRM, "public/legacy/upload/1c2d3e4f-note", true},
		{crmv1alpha1.ProductSuiteCRM, "public/legacy/upload/upgrades/module/CustomPack.zip", false},
		{crmv1alpha1.ProductSuiteCRM, "public/legacy/upload/index.html", false},
		{crmv1alpha1.ProductSuiteCRM, "public/legacy/cache/images/inline-1.png", true},
		{crmv1alpha1.ProductSuiteCRM, "public/legacy/cache/modules/Emails/u1/att.pdf", true},
		{crmv1alpha1.ProductSuiteCRM, "logs/prod/auth.log", true},
		{crmv1alpha1.ProductSuiteCRM, "public/legacy/config.php", false},
		{crmv1alpha1.ProductSuiteCRM, "public/legacy/custom/modules/Leads/vardefs.ext.php", false},
		{crmv1alpha1.ProductSuiteCRM, ".env.local", false},
		{crmv1alpha1.ProductOdoo, "filestore/crm/ab/ab12cd34", true},
		{crmv1alpha1.ProductOdoo, "sessions/werkzeug_abc.sess", true},
		{crmv1alpha1.ProductOdoo, "addons/18.0/crm_custom/__manifest__.py", false},
		{crmv1alpha1.ProductTwenty, "workspace-3f1e/attachment/contract.pdf", true},
		{crmv1alpha1.ProductTwenty, "3f1e/app-1/person-picture/p.png", true},
		{crmv1alpha1.ProductTwenty, "3f1e/app-1/built-logic-function/index.mjs", false},
		{crmv1alpha1.ProductTwenty, "3f1e/app-1/source/src/file/helper.ts", false},
		{crmv1alpha1.ProductCustom, "uploads/anything", false},
	} {
		if got := PersonalFile(tc.product, tc.path); got != tc.personal {
			t.Errorf("%s %s: personal %v, want %v", tc.product, tc.path, got, tc.personal)
		}
	}
}

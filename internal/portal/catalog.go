package portal

import (
	"net/http"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// messages is the portal's message catalogue: every text a page shows, by
// key, in each language. English is the fallback; a key missing from
// another language shows in English (TestCatalogueIsComplete keeps them whole).
var messages = map[language.Tag]map[string]string{
	language.English: {
		"title":                    "CRM acceptance portal",
		"skip":                     "Skip to the content",
		"signed-in-as":             "Signed in as %s",
		"sign-out":                 "Sign out",
		"sign-in":                  "Sign in",
		"sign-in-intro":            "Sign in with your company account to review and accept your sprints.",
		"language":                 "Language",
		"pending":                  "Waiting for your decision",
		"pending-none":             "Nothing waits for your decision.",
		"waited":                   "waiting for %s",
		"projects":                 "Your projects",
		"projects-none":            "No project names you as a product owner or integrator.",
		"project":                  "Project",
		"customer":                 "Customer",
		"product":                  "Product",
		"budget":                   "Budget",
		"budget-line":              "%d of %d hours used (%d delivered, %d accepted, not yet in production)",
		"budget-none":              "%d hours delivered, %d accepted (no budget set)",
		"budget-exceeded":          "Over budget",
		"environments":             "Environments",
		"environment":              "Environment",
		"stage":                    "Stage",
		"phase":                    "State",
		"version":                  "Version",
		"address":                  "Address",
		"last-backup":              "Last backup",
		"production-version":       "In production: version %s",
		"promoted-at":              "%s promoted %s",
		"compliance":               "Compliance",
		"compliant":                "every environment follows the project's policy",
		"not-compliant":            "not compliant",
		"sprints":                  "Sprints",
		"increment":                "Increment",
		"sprint":                   "Sprint %d",
		"accepted-by":              "Accepted by",
		"when":                     "When",
		"comment":                  "Comment",
		"changes":                  "Changes",
		"change-id":                "ID",
		"change-title":             "Title",
		"block":                    "Block",
		"hours":                    "Hours",
		"total":                    "Total",
		"test-environment":         "Try it on the test environment",
		"mail":                     "Mail the test environment sent",
		"mail-received":            "Received",
		"mail-from":                "From",
		"mail-to":                  "To",
		"mail-subject":             "Subject",
		"mail-no-subject":          "(no subject)",
		"mail-none":                "The test environment has sent no mail yet.",
		"mail-unreachable":         "The test environment's mail catcher did not answer: %s",
		"mail-catcher":             "Every message, in the mail catcher (the environment's admin password):",
		"verification":             "Verification",
		"progress":                 "Progress",
		"decision":                 "Your decision",
		"accept":                   "Accept",
		"reject":                   "Reject",
		"comment-hint":             "Required when you reject: say what is wrong.",
		"comment-required":         "Say what is wrong: a rejection needs a comment.",
		"decided":                  "Your decision was recorded.",
		"decision-refused":         "The cluster refused the decision: %s",
		"not-yours":                "This page does not exist or is not yours to see.",
		"not-awaiting":             "This increment is not waiting for a decision (%s).",
		"follow":                   "This page follows the promotion as it goes.",
		"back":                     "Back to your projects",
		"none":                     "none",
		"days-hours":               "%d d %d h",
		"hours-minutes":            "%d h %d min",
		"minutes":                  "%d min",
		"phase-Pending":            "Pending",
		"phase-Deploying":          "Deploying",
		"phase-Verifying":          "Verifying",
		"phase-AwaitingAcceptance": "Awaiting acceptance",
		"phase-AwaitingPromotion":  "Accepted, awaiting promotion",
		"phase-Superseded":         "Superseded",
		"phase-Promoting":          "Promoting",
		"phase-Promoted":           "Promoted",
		"phase-Rejected":           "Rejected",
		"phase-RolledBack":         "Rolled back",
		"phase-Failed":             "Failed",
	},
	language.Ukrainian: {
		"title":                    "Портал приймання CRM",
		"skip":                     "Перейти до змісту",
		"signed-in-as":             "Ви увійшли як %s",
		"sign-out":                 "Вийти",
		"sign-in":                  "Увійти",
		"sign-in-intro":            "Увійдіть обліковим записом вашої компанії, щоб переглянути й прийняти спринти.",
		"language":                 "Мова",
		"pending":                  "Очікують вашого рішення",
		"pending-none":             "Нічого не очікує вашого рішення.",
		"waited":                   "очікує %s",
		"projects":                 "Ваші проєкти",
		"projects-none":            "Жоден проєкт не називає вас власником продукту чи інтегратором.",
		"project":                  "Проєкт",
		"customer":                 "Замовник",
		"product":                  "Продукт",
		"budget":                   "Бюджет",
		"budget-line":              "Використано %d з %d годин (%d передано, %d прийнято, ще не у продуктиві)",
		"budget-none":              "%d годин передано, %d прийнято (бюджет не задано)",
		"budget-exceeded":          "Бюджет перевищено",
		"environments":             "Середовища",
		"environment":              "Середовище",
		"stage":                    "Етап",
		"phase":                    "Стан",
		"version":                  "Версія",
		"address":                  "Адреса",
		"last-backup":              "Остання резервна копія",
		"production-version":       "У продуктиві: версія %s",
		"promoted-at":              "%s просунуто %s",
		"compliance":               "Відповідність",
		"compliant":                "усі середовища відповідають політиці проєкту",
		"not-compliant":            "не відповідає",
		"sprints":                  "Спринти",
		"increment":                "Інкремент",
		"sprint":                   "Спринт %d",
		"accepted-by":              "Прийняв",
		"when":                     "Коли",
		"comment":                  "Коментар",
		"changes":                  "Зміни",
		"change-id":                "ID",
		"change-title":             "Назва",
		"block":                    "Блок",
		"hours":                    "Години",
		"total":                    "Разом",
		"test-environment":         "Спробуйте на тестовому середовищі",
		"mail":                     "Листи, надіслані тестовим середовищем",
		"mail-received":            "Отримано",
		"mail-from":                "Від",
		"mail-to":                  "Кому",
		"mail-subject":             "Тема",
		"mail-no-subject":          "(без теми)",
		"mail-none":                "Тестове середовище ще не надіслало жодного листа.",
		"mail-unreachable":         "Перехоплювач пошти тестового середовища не відповів: %s",
		"mail-catcher":             "Усі листи — у перехоплювачі пошти (пароль адміністратора середовища):",
		"verification":             "Перевірка",
		"progress":                 "Хід",
		"decision":                 "Ваше рішення",
		"accept":                   "Прийняти",
		"reject":                   "Відхилити",
		"comment-hint":             "Обов'язково при відхиленні: напишіть, що не так.",
		"comment-required":         "Напишіть, що не так: відхилення потребує коментаря.",
		"decided":                  "Ваше рішення записано.",
		"decision-refused":         "Кластер відхилив рішення: %s",
		"not-yours":                "Цієї сторінки не існує або вона не для вас.",
		"not-awaiting":             "Цей інкремент не очікує рішення (%s).",
		"follow":                   "Ця сторінка стежить за просуванням у реальному часі.",
		"back":                     "Назад до ваших проєктів",
		"none":                     "немає",
		"days-hours":               "%d дн. %d год",
		"hours-minutes":            "%d год %d хв",
		"minutes":                  "%d хв",
		"phase-Pending":            "Очікує",
		"phase-Deploying":          "Розгортається",
		"phase-Verifying":          "Перевіряється",
		"phase-AwaitingAcceptance": "Очікує приймання",
		"phase-AwaitingPromotion":  "Прийнято, очікує просування",
		"phase-Superseded":         "Замінено новішим",
		"phase-Promoting":          "Просувається",
		"phase-Promoted":           "У продуктиві",
		"phase-Rejected":           "Відхилено",
		"phase-RolledBack":         "Відкочено",
		"phase-Failed":             "Помилка",
	},
}

// Languages the catalogue has, English first (the fallback).
var Languages = []language.Tag{language.English, language.Ukrainian}

var (
	cat     = buildCatalog()
	matcher = language.NewMatcher(Languages)
)

func buildCatalog() catalog.Catalog {
	b := catalog.NewBuilder(catalog.Fallback(language.English))
	for tag, msgs := range messages {
		for key, text := range msgs {
			if err := b.SetString(tag, key, text); err != nil {
				panic(err) // the catalogue is a constant
			}
		}
	}
	return b
}

// printer prints the catalogue's messages in one language.
func printer(tag language.Tag) *message.Printer {
	return message.NewPrinter(tag, message.Catalog(cat))
}

// chooseLanguage takes ?lang=, then the lang cookie, then Accept-Language.
func chooseLanguage(r *http.Request) language.Tag {
	var prefs []string
	if l := r.URL.Query().Get("lang"); l != "" {
		prefs = append(prefs, l)
	}
	if c, err := r.Cookie("lang"); err == nil {
		prefs = append(prefs, c.Value)
	}
	prefs = append(prefs, r.Header.Get("Accept-Language"))
	tag, _ := language.MatchStrings(matcher, prefs...)
	base, _ := tag.Base()
	for _, l := range Languages {
		if b, _ := l.Base(); b == base {
			return l
		}
	}
	return language.English
}

<?xml version="1.0" encoding="UTF-8"?>
{#- A feed (RSS 2.0 or Atom) opened in a browser: a readable page instead of raw XML. Feed
    readers ignore it. Rendered to feeds/feed.xsl by `publisher feeds build`. -#}
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
                xmlns:atom="http://www.w3.org/2005/Atom" exclude-result-prefixes="atom">
  <xsl:output method="html" encoding="UTF-8" indent="yes"/>
  <xsl:variable name="title" select="/rss/channel/title | /atom:feed/atom:title"/>
  <xsl:template match="/">
    <html>
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/> (feed)</title>
        <style>
          body { margin: 0; background: {{ colours.background }}; color: {{ colours.text }}; font: 16px/1.5 Helvetica, Arial, sans-serif; }
          main { max-width: 640px; margin: 0 auto; padding: 24px; background: {{ colours.surface }}; }
          a { color: {{ colours.primary }}; }
          .about { padding: 12px 16px; border: 1px solid {{ colours.muted }}; }
          .meta { color: {{ colours.muted }}; font-size: 14px; }
          li { margin: 0 0 16px 0; }
        </style>
      </head>
      <body>
        <main>
          <p class="about">This is a feed. Copy this page's address into a feed reader to follow
            it, or see <a href="{{ feeds_url | e }}">every feed</a>.</p>
          <h1><xsl:value-of select="$title"/></h1>
          <p><xsl:value-of select="/rss/channel/description | /atom:feed/atom:subtitle"/></p>
          <ul>
            <xsl:for-each select="/rss/channel/item">
              <li><a href="{link}"><xsl:value-of select="title"/></a><br/>
                <span class="meta"><xsl:value-of select="pubDate"/></span></li>
            </xsl:for-each>
            <xsl:for-each select="/atom:feed/atom:entry">
              <li><a href="{atom:link[@rel='alternate' or not(@rel)]/@href}"><xsl:value-of select="atom:title"/></a><br/>
                <span class="meta"><xsl:value-of select="atom:updated"/></span></li>
            </xsl:for-each>
          </ul>
        </main>
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
